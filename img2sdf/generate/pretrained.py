"""The model that ships inside the package: a DiT run and its auto-decoder run as one folder that needs no
data store, with the SHA-256 of every file recorded and checked on load.

Layout (``img2sdf/pretrained/`` in the package, or any folder ``export_bundle`` writes)::

    manifest.json          {"files": {relative path: {"sha256", "bytes"}}, "total_bytes", "provenance"}
    decoder/               config.json, decoder.safetensors, latents.safetensors   (an `img2sdf fit` run)
    dit/                   config.json (decoder_run "../decoder"), dit.safetensors (a `train-dit` run)
    shapes.json            training shapes: obj_idx → uid, category (the neighbours list of `generate`)
    metrics.json           eval-gen's metrics of this model (when exported with them)

Only safetensors and JSON: nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from ..errors import UserError
from ..io import read_json, write_json

BUNDLE_DIR = Path(__file__).resolve().parents[1] / "pretrained"
MANIFEST = "manifest.json"
MAX_BYTES = 20 * 1024 * 1024  # the bundled model stays within 20 MB


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_bundle(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def verify_bundle(path: str | Path) -> dict:
    """The manifest of bundle ``path`` once every file's size and SHA-256 match (else a one-line error)."""
    path = Path(path)
    try:
        manifest = read_json(path / MANIFEST)
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path / MANIFEST}: unreadable bundle manifest ({e})") from e
    for rel, entry in files.items():
        f = path / rel
        if not f.is_file():
            raise UserError(f"{path}: bundled file {rel} is missing; reinstall img2sdf or rebuild it with "
                            f"`make pretrained`")
        if f.stat().st_size != entry["bytes"] or sha256(f) != entry["sha256"]:
            raise UserError(f"{f}: SHA-256 does not match the bundle manifest (corrupted or modified); "
                            f"reinstall img2sdf or rebuild it with `make pretrained`")
    return manifest


def default_model() -> Path:
    """The bundled model's folder, verified; a one-line error if this install has none."""
    if not is_bundle(BUNDLE_DIR):
        raise UserError("this install has no bundled model (img2sdf/pretrained/); pass --model DITRUN "
                        "(from `img2sdf train-dit`) or build it with `make pretrained`")
    verify_bundle(BUNDLE_DIR)
    return BUNDLE_DIR


def export_bundle(dit_dir: str | Path, out: str | Path, metrics: str | Path | None = None,
                  provenance: dict | None = None) -> dict:
    """Copy DiT run ``dit_dir`` and the decoder run it names into bundle ``out``; returns the manifest."""
    from ..data.store import ShapeStore
    from ..runs.run import Run

    dit_dir, out = Path(dit_dir), Path(out)
    dit = Run.open(dit_dir, "train-dit")
    decoder_dir = Path(dit.facts["decoder_run"])
    if not decoder_dir.is_absolute():
        decoder_dir = (dit_dir / decoder_dir).resolve()
    for f in (dit_dir / "dit.safetensors", decoder_dir / "decoder.safetensors",
              decoder_dir / "latents.safetensors"):
        if not f.is_file():
            raise UserError(f"{f}: missing; finish the run before exporting it")
    decoder = Run.open(decoder_dir, "fit")
    if out.exists():
        shutil.rmtree(out)
    (out / "dit").mkdir(parents=True)
    (out / "decoder").mkdir()
    shutil.copyfile(dit_dir / "dit.safetensors", out / "dit" / "dit.safetensors")
    for name in ("decoder.safetensors", "latents.safetensors"):
        shutil.copyfile(decoder_dir / name, out / "decoder" / name)
    # the one run schema, pointing at nothing outside the bundle (no data store)
    write_json(out / "dit" / "config.json", {**dit.to_json(), "data_root": "", "decoder_run": "../decoder"})
    write_json(out / "decoder" / "config.json", {**decoder.to_json(), "data_root": ""})
    wanted = set(dit.obj_idx)
    shapes = {str(s.obj_idx): {"uid": s.uid, "category": s.category}
              for s in ShapeStore(dit.data_root).load_manifest().shapes if s.obj_idx in wanted}
    write_json(out / "shapes.json", shapes)
    if metrics:
        shutil.copyfile(metrics, out / "metrics.json")
    files = {}
    for f in sorted(p for p in out.rglob("*") if p.is_file()):
        files[f.relative_to(out).as_posix()] = {"sha256": sha256(f), "bytes": f.stat().st_size}
    total = sum(e["bytes"] for e in files.values())
    if total > MAX_BYTES:
        raise UserError(f"bundle {out} is {total / 2**20:.1f} MB, over the {MAX_BYTES / 2**20:.0f} MB limit")
    manifest = {"files": files, "total_bytes": total, "provenance": provenance or {}}
    write_json(out / MANIFEST, manifest)
    return manifest


def bundle_shapes(dit_dir: Path) -> dict[int, dict]:
    """obj_idx → {uid, category} of a bundle's training shapes (empty when ``dit_dir`` is not in one)."""
    path = dit_dir.parent / "shapes.json"
    if not (is_bundle(dit_dir.parent) and path.is_file()):
        return {}
    return {int(k): v for k, v in read_json(path).items()}
