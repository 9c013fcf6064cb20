"""Flags shared by several commands, spelled and explained once: ``--device``, ``--amp``, and the trainer
config of ``--preset`` / ``--set`` (which, on ``--resume``, start from the run's own settings)."""

from __future__ import annotations

from pathlib import Path


def add_device(parser, what: str = "the model") -> None:
    parser.add_argument("--device", default="auto",
                        help=f"where {what} runs: auto (this rank's GPU if any, else cpu), cpu, cuda, cuda:N "
                             f"or mps; a missing device is an error")


def add_samples(parser) -> None:
    from ..generate import DEFAULT_PICK, DEFAULT_SAMPLES, MAX_SAMPLES, PICKS

    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                        help=f"DDIM samples drawn per input, 1 to {MAX_SAMPLES} (1 = one sample, as in the "
                             f"paper)")
    parser.add_argument("--pick", default=DEFAULT_PICK, choices=PICKS,
                        help="which latent of the samples is meshed: medoid (the sample nearest their mean: "
                             "a real sample) or mean (their mean: a posterior-mean estimate that can blend "
                             "unlike shapes when the input is ambiguous)")


def add_trainer(parser, presets: list[str], preset_help: str, amp: bool = True) -> None:
    parser.add_argument("--preset", default=None, choices=presets,
                        help=f"{preset_help} (default: tiny; on --resume: the run's own settings)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set lr=1e-4 --set model.layers=2 (repeatable)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its newest checkpoint; changed settings that "
                             "are safe mid-run (longer schedule, log/ckpt intervals, threads, amp) are "
                             "applied with a note, any other change is an error listing it")
    if amp:
        parser.add_argument("--amp", default=None, choices=["off", "bf16", "fp16"],
                            help="mixed precision of the forward pass (fp16 uses loss scaling; bf16 is the "
                                 "choice on Ampere+ GPUs); default: the config's (off)")


def trainer_config(kind: str, args, out: Path, extra: list[str] | None = None):
    """The config a trainer runs with: preset + overrides, or on ``--resume`` without ``--preset`` the run's
    own config + overrides (None when nothing is overridden: the run continues as it was)."""
    from ..runs.configs import make_config
    from ..runs.run import Run

    overrides = list(args.overrides) + list(extra or [])
    if getattr(args, "amp", None):
        overrides.append(f"amp={args.amp}")
    if args.resume and args.preset is None:
        if not overrides:
            return None
        return make_config(kind, overrides=overrides, base=Run.open(out, kind).config)
    return make_config(kind, args.preset or "tiny", overrides)
