"""DINOv2 encoders (paper §2.3: DINOv2-base/14 CLS token, 768-d, per rendered view).

Weights are never downloaded here: they come from ``--weights DIR`` (a ``save_pretrained`` folder or a
Hugging Face snapshot) or from the local Hugging Face cache, both filled by ``img2sdf fetch``
(``weights.py``, hash-checked). With neither, construction fails at once saying how to fetch them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from .base import ImageEncoder, register
from .weights import HUB_IDS, RECORD, unverified_files

# The model's own preprocessing (facebook/dinov2-* preprocessor_config.json): bicubic resize of the short
# side to 256, centre crop 224, ImageNet mean/std.
RESIZE_SHORT = 256
CROP = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resolve_weights(name: str, weights: str | None) -> Path:
    """The local folder holding ``config.json`` and the weights of DINOv2 ``name``; UserError if absent.

    A folder made by ``img2sdf fetch`` is checked against the SHA-256s it recorded before use.
    """
    hub_id = HUB_IDS[name]
    if weights is not None:
        path = Path(weights)
        if not (path / "config.json").is_file():
            raise UserError(f"--weights {path}: no config.json there; point it at a folder made by "
                            f"`img2sdf fetch {name} --to DIR`, `hf download {hub_id} --local-dir DIR` or "
                            f"`save_pretrained`")
    else:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            path = Path(snapshot_download(hub_id, local_files_only=True))
        except LocalEntryNotFoundError as e:
            raise UserError(
                f"--encoder {name}: weights of {hub_id} are not in the Hugging Face cache and no --weights "
                f"was given (nothing is downloaded implicitly); run `img2sdf fetch {name}` (or, for an "
                f"offline machine, `img2sdf fetch {name} --to DIR` or `hf download {hub_id} --local-dir DIR` "
                f"on a connected one, copy DIR here and pass --weights DIR)"
            ) from e
    if not (path / "model.safetensors").is_file():
        raise UserError(f"{path}: no model.safetensors (pickled .bin weights are never loaded); "
                        f"run `img2sdf fetch {name}` or re-save the model with `save_pretrained`")
    if (path / RECORD).is_file() and (bad := unverified_files(path)):
        raise UserError(f"{path}: {', '.join(bad)} missing or not matching the SHA-256 in {RECORD}; "
                        f"rerun `img2sdf fetch {name}{f' --to {path}' if weights else ''}`")
    return path


class Dinov2Encoder(ImageEncoder):
    """CLS token (``last_hidden_state[:, 0]``) of ``transformers.Dinov2Model``."""

    def __init__(self, name: str, weights: str | None = None, device: str = "cpu"):
        import torch
        from transformers import Dinov2Model

        source = resolve_weights(name, weights)
        self.name = name
        self.device = torch.device(device)
        model = Dinov2Model.from_pretrained(source, local_files_only=True, use_safetensors=True)
        self.model = model.eval().to(self.device)
        self.dim = int(self.model.config.hidden_size)
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    def preprocess(self, images: np.ndarray):
        """uint8 [B, H, W, 3] → normalised float [B, 3, 224, 224] as the model was trained."""
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        h, w = x.shape[-2:]
        scale = RESIZE_SHORT / min(h, w)
        size = (round(h * scale), round(w * scale))
        x = F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
        top, left = (size[0] - CROP) // 2, (size[1] - CROP) // 2
        x = x[..., top:top + CROP, left:left + CROP]
        return (x - self.mean) / self.std

    def _encode_batch(self, images: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.model(pixel_values=self.preprocess(images))
        return out.last_hidden_state[:, 0].float().cpu().numpy()


for _name in HUB_IDS:
    register(_name, lambda weights=None, device="cpu", _n=_name: Dinov2Encoder(_n, weights, device))
