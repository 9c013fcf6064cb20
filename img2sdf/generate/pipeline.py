"""Image(s) → mesh (paper §6): encoder → DDIM over the latent DiT → 64-dim latent → shared decoder → mesh.

:class:`ImageToShape` loads everything a DiT run names in its ``config.json`` (decoder run, data store for
categories, encoder) once; each stage is timed, the way TripoSR's ``run.py`` reports its stages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..runs.load import DecoderRun, DiTRun, load_decoder_run, load_dit_run
from . import DEFAULT_PICK, DEFAULT_SAMPLES, check_sampling
from .neighbours import top_k
from .predict import sample_targets

GUARDS = ("none", "project")



@dataclass
class Generated:
    latent: np.ndarray  # [64] (after the guard, if one moved it)
    mesh: object | None  # trimesh.Trimesh (None until meshed)
    neighbours: list[dict]  # top-k training shapes by latent cosine: obj_idx, uid, category, cos
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    warnings: list[str] = field(default_factory=list)  # one line each: off-range latent, degenerate mesh
    latent_distance: float = 0.0  # Mahalanobis distance of the sampled latent (guard.LatentGuard)


class ImageToShape:
    """A loaded DiT run with its decoder and training latents; the encoder is loaded on first use (the
    evaluation reads cached features and never needs it)."""

    def __init__(self, dit: DiTRun, decoder_run: DecoderRun, categories: dict[int, str], uids: dict[int, str],
                 encoder=None, device: torch.device | None = None):
        self.device = device or torch.device("cpu")
        self.dit = dit.to(self.device)
        decoder_run.to(self.device)
        self.decoder_run = decoder_run
        self.decoder = decoder_run.decoder
        self._encoder = encoder
        self.train_latents = torch.as_tensor(decoder_run.latents).detach().float().cpu().numpy()
        self.train_obj_idx = [int(i) for i in decoder_run.obj_idx]
        self.categories = categories
        self.uids = uids
        self._guard = None

    @property
    def guard(self):
        """The :class:`~img2sdf.generate.guard.LatentGuard` of the training latents (built on first use)."""
        if self._guard is None:
            from .guard import LatentGuard

            self._guard = LatentGuard(self.train_latents)
        return self._guard

    @classmethod
    def load(cls, dit_dir: str | Path | None = None, encoder=None, device: str | None = None) -> ImageToShape:
        """Load a DiT run, or a bundle (``generate.pretrained``; None = the one inside the package, its
        hashes checked), onto ``device`` (``--device``: auto, cpu, cuda[:N], mps); ``encoder`` overrides the
        one it was trained with (tests pass a built one)."""
        from ..data.store import ShapeStore
        from ..devices import choose_device
        from .pretrained import bundle_shapes, default_model, is_bundle, verify_bundle

        dev = choose_device(0, device)
        if dit_dir is None:
            bundle = default_model()  # verified
        else:
            dit_dir = Path(dit_dir)
            bundle = next((p for p in (dit_dir, dit_dir.parent) if is_bundle(p)), None)
            if bundle is not None:  # the bundle's folder or its dit/ inside it: hashes checked either way
                verify_bundle(bundle)
        if bundle is not None:
            dit_dir = bundle / "dit"
        dit = load_dit_run(dit_dir)
        if dit.kind != "train-dit" or "wae_run" in dit.info:
            raise UserError(f"{dit_dir}: a weight-space DiT run (Family A or B); `generate` takes a latent "
                            f"DiT run of `img2sdf train-dit` (Family C); `study families` scores A and B")
        for key in ("decoder_run", "data_root", "encoder"):
            if key not in dit.info:
                raise UserError(f"{dit_dir}/config.json: no {key!r}; not written by `img2sdf train-dit`")
        decoder_dir = Path(dit.info["decoder_run"])
        if not decoder_dir.is_absolute():
            decoder_dir = (dit_dir / decoder_dir).resolve()
        if not decoder_dir.is_dir():
            raise UserError(f"{dit_dir}/config.json names decoder run {decoder_dir}, which is missing")
        decoder_run = load_decoder_run(decoder_dir)
        if [int(i) for i in decoder_run.obj_idx] != [int(i) for i in dit.info["obj_idx"]]:
            raise UserError(f"{decoder_dir}: its latents are not the ones {dit_dir} was trained on")
        bundled = bundle_shapes(dit_dir)
        if bundled:
            categories = {i: s["category"] for i, s in bundled.items()}
            uids = {i: s["uid"] for i, s in bundled.items()}
        else:
            store = ShapeStore(dit.info["data_root"])
            shapes = store.load_manifest().shapes if dit.info["data_root"] and store.exists() else []
            categories = {s.obj_idx: s.category for s in shapes}
            uids = {s.obj_idx: s.uid for s in shapes}
        return cls(dit, decoder_run, categories, uids, encoder, dev)

    @property
    def encoder(self):
        if self._encoder is None:
            from ..encoders import get_encoder

            self._encoder = get_encoder(self.dit.info["encoder"], device=str(self.device))
        if self._encoder.dim != self.dit.config.model.feature_dim:
            raise UserError(f"encoder {self._encoder.name} gives {self._encoder.dim}-dim features; "
                            f"{self.dit.path} was trained on {self.dit.config.model.feature_dim}-dim ones "
                            f"(the encoder changed since; retrain with `img2sdf train-dit`)")
        return self._encoder

    # stages --------------------------------------------------------------------------------------
    def encode(self, images: np.ndarray) -> np.ndarray:
        """uint8 [K, H, W, 3] → features float32 [K, D]."""
        return np.asarray(self.encoder.encode(images), dtype=np.float32)

    def sample_latents(self, features, poses=None, view_mask=None, seed: int = 0, steps: int | None = None,
                       eta: float = 0.0, guidance: float = 0.0, samples: int = 1,
                       pick: str = DEFAULT_PICK) -> np.ndarray:
        """DDIM (§6.1) for a batch: features [B, K, D], poses [B, K, 4, 4] or None (unknown) → [B, 64];
        ``samples`` > 1: that many samples per input, reduced to one by ``pick``
        (``predict.sample_targets``)."""
        return sample_targets(self.dit, features, poses, seed=seed, steps=steps, view_mask=view_mask,
                              eta=eta, guidance=guidance, samples=samples, pick=pick).numpy()

    def neighbours(self, latent: np.ndarray, k: int = 5) -> list[dict]:
        """The k training shapes whose latents are nearest by cosine (the §1.2 ii diagnostic)."""
        rows, cos = top_k(latent, self.train_latents, k)
        out = []
        for row, c in zip(rows[0], cos[0], strict=True):
            idx = self.train_obj_idx[int(row)]
            out.append({"obj_idx": idx, "uid": self.uids.get(idx, ""),
                        "category": self.categories.get(idx, "?"), "cos": float(c)})
        return out

    def mesh(self, latent: np.ndarray, resolution: int = 128):
        from .mesh import extract_mesh

        return extract_mesh(self.decoder, torch.as_tensor(latent, dtype=torch.float32), resolution)

    def generate(self, images: np.ndarray, poses: np.ndarray | None = None, seed: int = 0,
                 steps: int | None = None, resolution: int = 128, guidance: float = 0.0,
                 guard: str = "none", samples: int = DEFAULT_SAMPLES, pick: str = DEFAULT_PICK) -> Generated:
        """1-8 views uint8 [K, H, W, 3] (+ optional camera-to-world poses [K, 4, 4]) → a mesh, timed; the
        latent is the ``pick`` (medoid or mean) of ``samples`` DDIM samples (1: one sample, as in the paper).

        ``warnings`` says when the sampled latent is off the training range or the mesh is degenerate;
        ``guard="project"`` pulls an off-range latent back to the range before meshing."""
        from .guard import mesh_flags

        if not 1 <= len(images) <= 8:
            raise UserError(f"give 1 to 8 images, got {len(images)}")
        if guard not in GUARDS:
            raise UserError(f"guard {guard!r}: choose one of {', '.join(GUARDS)}")
        check_sampling(samples, pick)
        timings = {}
        t = time.perf_counter()
        features = self.encode(images)
        timings["encode"] = time.perf_counter() - t
        t = time.perf_counter()
        latent = self.sample_latents(features[None], None if poses is None else np.asarray(poses)[None],
                                     seed=seed, steps=steps, guidance=guidance, samples=samples, pick=pick)[0]
        timings["sample"] = time.perf_counter() - t
        check = self.guard.check(latent)
        warnings = []
        if check.off_range:
            warnings.append(check.message())
            if guard == "project":
                latent = self.guard.project(latent)
                warnings.append("--guard project: the latent was pulled back to the training range")
        t = time.perf_counter()
        try:
            mesh = self.mesh(latent, resolution)
        except UserError as e:
            raise UserError(f"{e}; {warnings[0]}" if warnings else str(e)) from e
        timings["mesh"] = time.perf_counter() - t
        warnings += [f"the mesh is {flag}" for flag in mesh_flags(mesh)]
        return Generated(latent, mesh, self.neighbours(latent), timings, warnings, check.distance)
