"""Shape sources for ``img2sdf prepare`` (paper §2.1): the built-in synthetic set, a folder, Objaverse-LVIS.

A source lists its shapes as :class:`ShapeRecord` s in a fixed order (the order defines ``obj_idx``, so every
shard of a job sees the same catalogue) and loads one shape at a time inside a worker.

Splits: synthetic shapes carry their own (``train``/``test``/``ood``). Folder and Objaverse shapes go to
``test`` when ``sha1(key)`` maps below ``--test-fraction`` (key = path relative to the input folder, or the
Objaverse uid), else ``train``; a ``splits.json`` overrides this with ``{"key or category": "split"}``,
e.g. ``{"tunnel": "ood", "chair/c7.obj": "test"}``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import trimesh

from ..errors import UserError
from .store import SPLITS
from .watertight import ShapeError

MESH_EXTENSIONS = (".obj", ".ply", ".stl", ".off", ".glb", ".gltf")


@dataclass(frozen=True)
class ShapeRecord:
    uid: str
    category: str
    split: str
    source: str  # file path; "synthetic:<seed>"; "objaverse:<uid>" until downloaded
    seed: int = 0


def hash_split(key: str, test_fraction: float) -> str:
    """Deterministic train/test assignment that does not change when other files are added."""
    u = int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) / 2**32
    return "test" if u < test_fraction else "train"


def read_splits(path: Path | None) -> dict[str, str]:
    if path is None or not path.is_file():
        return {}
    try:
        splits = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f'{path}: not readable JSON ({e}); expected {{"key or category": "split"}}') from e
    if not isinstance(splits, dict):
        raise UserError(f'{path}: expected a JSON object {{"key or category": "split"}}')
    bad = {k: v for k, v in splits.items() if v not in SPLITS}
    if bad:
        raise UserError(f"{path}: unknown split(s) {bad}; use one of {', '.join(SPLITS)}")
    return splits


def load_mesh_file(path: Path) -> trimesh.Trimesh:
    """Read a mesh file; scenes (GLB/GLTF, multi-object OBJ) are flattened with their node transforms."""
    if path.suffix.lower() not in MESH_EXTENSIONS:
        raise ShapeError(f"unsupported extension {path.suffix!r} (use {' '.join(MESH_EXTENSIONS)})")
    if path.stat().st_size == 0:
        raise ShapeError("empty file")
    try:
        loaded = trimesh.load(str(path), process=False)
    except Exception as e:  # trimesh raises many types for garbage input
        raise ShapeError(f"not a readable mesh ({type(e).__name__}: {_one_line(e)})") from e
    if isinstance(loaded, trimesh.Scene):
        meshes = [g for g in loaded.dump() if isinstance(g, trimesh.Trimesh)] if loaded.geometry else []
        loaded = trimesh.util.concatenate(meshes) if meshes else None
    if not isinstance(loaded, trimesh.Trimesh):
        raise ShapeError(f"no triangles in file (read as {type(loaded).__name__})")
    return loaded


def load_shape(record: ShapeRecord) -> trimesh.Trimesh:
    if record.source.startswith("synthetic:"):
        from .synthetic import SyntheticSpec, build

        return build(SyntheticSpec(record.uid, record.category, record.split, record.seed))
    if record.source.startswith("objaverse:"):
        raise ShapeError("not downloaded")
    return load_mesh_file(Path(record.source))


class SyntheticSource:
    """The built-in procedural everyday-object families (img2sdf.data.synthetic)."""

    name = "synthetic"

    def __init__(self, n_train: int, n_test: int | None = None, n_ood: int | None = None, seed: int = 0):
        if n_train < 1:
            raise UserError(f"--n {n_train}: need at least 1 training shape")
        self.n_train = n_train
        self.n_test = max(2, n_train // 8) if n_test is None else n_test
        self.n_ood = max(3, n_train // 16) if n_ood is None else n_ood
        self.seed = seed

    def records(self) -> list[ShapeRecord]:
        from .synthetic import catalog

        return [
            ShapeRecord(s.uid, s.category, s.split, f"synthetic:{s.seed}", s.seed)
            for s in catalog(self.n_train, self.n_test, self.n_ood, seed=self.seed)
        ]

    def fetch(self, records: list[ShapeRecord]) -> tuple[list[ShapeRecord], dict[str, str]]:
        return records, {}


class FolderSource:
    """Mesh files under a folder; the category is the first sub-folder (``_root`` for files at the top)."""

    name = "folder"

    def __init__(self, root: Path, test_fraction: float = 0.1, splits: Path | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise UserError(f"--input {self.root}: not a directory")
        self.test_fraction = test_fraction
        self.splits = read_splits(splits if splits is not None else self.root / "splits.json")

    def records(self) -> list[ShapeRecord]:
        # Every regular file is listed, so unsupported ones show up as failed instead of vanishing.
        files = sorted(p for p in self.root.rglob("*")
                       if p.is_file() and not _hidden(p.relative_to(self.root)) and p.name != "splits.json")
        if not files:
            raise UserError(f"--input {self.root}: no files; expected {' '.join(MESH_EXTENSIONS)} files")
        records = []
        for path in files:
            rel = path.relative_to(self.root).as_posix()
            category = rel.split("/")[0] if "/" in rel else "_root"
            split = self.splits.get(rel) or self.splits.get(category) or hash_split(rel, self.test_fraction)
            records.append(ShapeRecord(rel, category, split, str(path)))
        return records

    def fetch(self, records: list[ShapeRecord]) -> tuple[list[ShapeRecord], dict[str, str]]:
        return records, {}


class ObjaverseLVISSource:
    """Objaverse objects with an LVIS label, through the ``objaverse`` package (downloads on first use)."""

    name = "objaverse-lvis"

    def __init__(self, categories: list[str] | None = None, per_category: int | None = None,
                 download_dir: Path | None = None, test_fraction: float = 0.1, splits: Path | None = None):
        import objaverse

        self.objaverse = objaverse
        if download_dir is not None:
            # The package has no setting for its cache root: its functions read these module globals.
            objaverse.BASE_PATH = str(Path(download_dir).expanduser())
            objaverse._VERSIONED_PATH = str(Path(objaverse.BASE_PATH) / "hf-objaverse-v1")
        self.categories = categories
        self.per_category = per_category
        self.test_fraction = test_fraction
        self.splits = read_splits(splits)

    def records(self) -> list[ShapeRecord]:
        annotations = self._call(self.objaverse.load_lvis_annotations, "the LVIS annotations")
        wanted = self.categories or sorted(annotations)
        unknown = [c for c in wanted if c not in annotations]
        if unknown:
            raise UserError(f"--categories: not LVIS categories: {', '.join(unknown[:10])}")
        records, seen = [], set()
        for category in wanted:
            # Hash order, not the file's order: a stable, unbiased pick for --per-category.
            uids = sorted(annotations[category], key=lambda u: hashlib.sha1(u.encode()).hexdigest())
            for uid in uids[: self.per_category]:
                if uid in seen:
                    continue
                seen.add(uid)
                split = self._split(uid, category)
                records.append(ShapeRecord(uid, category, split, f"objaverse:{uid}"))
        if not records:
            raise UserError("objaverse-lvis: the selection is empty; check --categories and --per-category")
        return records

    def fetch(self, records: list[ShapeRecord]) -> tuple[list[ShapeRecord], dict[str, str]]:
        """Download (or find in the cache) each object. Returns (records with local paths, uid -> reason)."""
        from tqdm import tqdm

        # One call for all (each call re-reads the 800k-entry object list); if any download fails, the
        # package gives up on the whole call, so then each object is fetched alone to name the failures.
        try:
            paths = self.objaverse.load_objects([r.uid for r in records]) if records else {}
            errors = {}
        except (OSError, urllib.error.URLError):
            paths, errors = {}, {}
            for rec in tqdm(records, desc="objaverse download", unit="obj"):
                try:
                    paths.update(self.objaverse.load_objects([rec.uid]))
                except (OSError, urllib.error.URLError) as e:
                    errors[rec.uid] = f"download failed ({_one_line(e)})"
        missing = [r.uid for r in records if r.uid not in paths]
        failed = {uid: errors.get(uid, "not in the Objaverse object list") for uid in missing}
        return [dataclasses.replace(r, source=paths[r.uid]) if r.uid in paths else r for r in records], failed

    def _split(self, uid: str, category: str) -> str:
        return self.splits.get(uid) or self.splits.get(category) or hash_split(uid, self.test_fraction)

    def _call(self, fn, what: str):
        try:
            return fn()
        except (OSError, urllib.error.URLError) as e:
            raise UserError(
                f"objaverse-lvis: cannot get {what} ({_one_line(e)}); go online once, or pass --download-dir "
                f"with a cache holding hf-objaverse-v1/ (now {self.objaverse._VERSIONED_PATH})"
            ) from e


@dataclasses.dataclass
class SourceConfig:
    """Which shapes to prepare: ``source`` (synthetic, folder or objaverse-lvis) and its options."""

    source: str = "synthetic"
    n: int = 32  # synthetic: training shapes
    n_test: int | None = None
    n_ood: int | None = None
    seed: int = 0
    input: str | None = None  # folder: the mesh folder
    test_fraction: float = 0.1  # folder / objaverse-lvis: share hashed into the test split
    splits: str | None = None  # JSON {key or category: split}
    categories: tuple[str, ...] = ()  # objaverse-lvis: () = all
    per_category: int | None = None
    download_dir: str | None = None


def make_source(cfg: SourceConfig) -> SyntheticSource | FolderSource | ObjaverseLVISSource:
    """Build the source ``cfg`` names."""
    splits = Path(cfg.splits) if cfg.splits else None
    if cfg.source == "synthetic":
        return SyntheticSource(cfg.n, cfg.n_test, cfg.n_ood, cfg.seed)
    if cfg.source == "folder":
        if not cfg.input:
            raise UserError("--source folder needs --input DIR")
        return FolderSource(Path(cfg.input), cfg.test_fraction, splits)
    if cfg.source != "objaverse-lvis":
        raise UserError(f"source {cfg.source!r}: choose synthetic, folder or objaverse-lvis")
    return ObjaverseLVISSource(list(cfg.categories) or None, cfg.per_category, cfg.download_dir,
                               cfg.test_fraction, splits)


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__

