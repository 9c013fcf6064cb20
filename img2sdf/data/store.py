"""The prepared-data store: one folder holds every artefact of a dataset (paper §2.1-2.3).

Layout of ``DATA/``::

    manifest.json                  every shape: obj_idx, uid, category, split, source, status, reason, timings
    meshes/obj_NNNN.ply            watertight mesh normalised to the unit bounding sphere
    shapes/obj_NNNN.npz            SDF samples: points float32 [N, 3], sdf float32 [N] (negative inside)
    renders/obj_NNNN/view_KK.png   RGBA renders (alpha = object mask)
    renders/obj_NNNN/cameras.json  per view: 4x4 camera-to-world (OpenGL), fov, azimuth, elevation
    features/NAME.npy              float16 [N_shapes, V, D] image-encoder features (row = obj_idx)
    features/NAME.poses.npy        float32 [N_shapes, V, 4, 4] camera-to-world of each encoded view
    features/NAME.json             encoder name, dim, which rows are filled

``obj_idx`` is dense and 0-based; ``uid`` is the source's own id (Objaverse hash, file path, or
``synthetic-<category>-<seed>``). Failed shapes stay in the manifest with ``status="failed"`` and a reason.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..io import read_json, write_json

MANIFEST_VERSION = 1
SPLITS = ("train", "test", "ood")


def shape_name(obj_idx: int) -> str:
    """The file stem every artefact of shape ``obj_idx`` uses (``obj_0042``)."""
    return f"obj_{obj_idx:04d}"


@dataclass
class ShapeEntry:
    obj_idx: int
    uid: str
    category: str
    split: str
    source: str
    status: str = "pending"  # pending | ok | failed
    reason: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    # {"center": [3], "scale": s}: normalised = (v - center) * s
    transform: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return shape_name(self.obj_idx)


@dataclass
class Manifest:
    shapes: list[ShapeEntry]
    source: str = ""
    info: dict = field(default_factory=dict)

    def by_uid(self) -> dict[str, int]:
        return {s.uid: s.obj_idx for s in self.shapes}

    def select(self, split: str | None = None, status: str | None = "ok") -> list[ShapeEntry]:
        return [
            s for s in self.shapes
            if (split is None or s.split == split) and (status is None or s.status == status)
        ]

    def to_json(self) -> dict:
        return {
            "version": MANIFEST_VERSION,
            "source": self.source,
            "info": self.info,
            "n_shapes": len(self.shapes),
            "n_ok": sum(s.status == "ok" for s in self.shapes),
            "n_failed": sum(s.status == "failed" for s in self.shapes),
            "shapes": [dataclasses.asdict(s) for s in self.shapes],
            "uid_to_idx": self.by_uid(),
        }

    @classmethod
    def from_json(cls, data: dict) -> Manifest:
        if data.get("version") != MANIFEST_VERSION:
            raise UserError(f"manifest version {data.get('version')!r} is not {MANIFEST_VERSION}")
        shapes = [ShapeEntry(**s) for s in data["shapes"]]
        for i, s in enumerate(shapes):
            if s.obj_idx != i:
                raise UserError(f"manifest is corrupt: shape #{i} has obj_idx {s.obj_idx}")
        return cls(shapes=shapes, source=data.get("source", ""), info=data.get("info", {}))


class ShapeStore:
    """Paths and loaders for a prepared dataset folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # paths ---------------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def mesh_path(self, obj_idx: int) -> Path:
        return self.root / "meshes" / f"{shape_name(obj_idx)}.ply"

    def sdf_path(self, obj_idx: int) -> Path:
        return self.root / "shapes" / f"{shape_name(obj_idx)}.npz"

    def render_dir(self, obj_idx: int) -> Path:
        return self.root / "renders" / shape_name(obj_idx)

    def features_path(self, encoder: str) -> Path:
        return self.root / "features" / f"{encoder}.npy"

    def poses_path(self, encoder: str) -> Path:
        return self.root / "features" / f"{encoder}.poses.npy"

    def features_meta_path(self, encoder: str) -> Path:
        return self.root / "features" / f"{encoder}.json"

    # manifest ------------------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def load_manifest(self) -> Manifest:
        if not self.exists():
            raise UserError(f"{self.root}: no manifest.json; run `img2sdf prepare {self.root}` first")
        return Manifest.from_json(read_json(self.manifest_path))

    def save_manifest(self, manifest: Manifest) -> None:
        write_json(self.manifest_path, manifest.to_json())

    # loaders -------------------------------------------------------------------------------------
    def load_sdf(self, obj_idx: int) -> tuple[np.ndarray, np.ndarray]:
        path = self.sdf_path(obj_idx)
        if not path.is_file():
            raise UserError(f"{path}: missing; run `img2sdf prepare {self.root} --stages sdf`")
        with np.load(path) as z:
            return z["points"].astype(np.float32), z["sdf"].astype(np.float32)

    def load_mesh(self, obj_idx: int):
        import trimesh

        path = self.mesh_path(obj_idx)
        if not path.is_file():
            raise UserError(f"{path}: missing; run `img2sdf prepare {self.root} --stages watertight`")
        return trimesh.load(path, force="mesh", process=False)

    def load_features(self, encoder: str) -> tuple[np.ndarray, np.ndarray, dict]:
        """Return (features [N, V, D] float16, poses [N, V, 4, 4] float32, meta)."""
        path = self.features_path(encoder)
        if not path.is_file():
            raise UserError(f"{path}: missing; run `img2sdf encode {self.root} --encoder {encoder}`")
        return (
            np.load(path, mmap_mode="r"),
            np.load(self.poses_path(encoder)),
            read_json(self.features_meta_path(encoder)),
        )
