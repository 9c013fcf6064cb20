"""Generation: mesh extraction from an SDF decoder, latent fitting, image → mesh."""

# DDIM samples per input (generate, the web demo, eval-gen) and how they become the one latent that is meshed
# (generate.predict.sample_targets): the medoid of 16 samples, the one nearest their mean, closes most of the
# gap between one sample and retrieval on held-out photos while staying a real sample; their mean scores a
# little better on average but blends unlike shapes when the photo is ambiguous (README, measured).
# samples=1 is the paper's single sample.
DEFAULT_SAMPLES = 16
MAX_SAMPLES = 64  # one batched DDIM run of this many rows stays well under a second on a CPU
PICKS = ("medoid", "mean")
DEFAULT_PICK = "medoid"


def check_sampling(samples: int, pick: str = DEFAULT_PICK) -> None:
    """One-line errors for a sample count or pick out of range (generate, eval-gen, the web demo)."""
    from ..errors import UserError

    if not 1 <= samples <= MAX_SAMPLES:
        raise UserError(f"samples: {samples} is out of range; use 1 to {MAX_SAMPLES}")
    if pick not in PICKS:
        raise UserError(f"pick {pick!r}: choose one of {', '.join(PICKS)}")
