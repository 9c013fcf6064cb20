"""Export a trained model as a bundle: the DiT run, the decoder run it names and the training shapes'
categories in one folder with the SHA-256 of every file (safetensors + JSON only, ≤ 20 MB), which
``img2sdf generate --model BUNDLE`` and ``img2sdf serve --model BUNDLE`` load with no data store.

``make pretrained`` writes the package's own bundle (``img2sdf/pretrained/``, the default ``--model``):
``img2sdf bundle runs/pretrained/dit --out img2sdf/pretrained --metrics runs/pretrained/eval/metrics.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "export a DiT run and its decoder as a self-contained, hash-checked model bundle"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="DiT run folder (from train-dit)")
    parser.add_argument("--out", type=Path, required=True, help="bundle folder to (re)write")
    parser.add_argument("--metrics", type=Path, default=None, help="eval-gen metrics.json to ship with it")
    parser.add_argument("--note", default="", help="free text recorded in the manifest's provenance")


def run(args: argparse.Namespace) -> int:
    import datetime

    from ..generate.pretrained import export_bundle

    provenance = {"dit_run": str(args.model.resolve()), "note": args.note,
                  "exported": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    manifest = export_bundle(args.model, args.out, args.metrics, provenance)
    for rel, entry in manifest["files"].items():
        print(f"  {entry['sha256'][:16]}  {entry['bytes']:>10,}  {rel}")
    print(f"bundle: {args.out} ({manifest['total_bytes'] / 2**20:.2f} MB, {len(manifest['files'])} files)")
    return 0
