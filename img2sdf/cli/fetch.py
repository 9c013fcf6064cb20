"""Download DINOv2 weights (config.json + model.safetensors) once, checked against the hub's SHA-256s.

Into the Hugging Face cache (where `img2sdf encode --encoder dinov2-*` finds them) or into --to DIR (copy DIR
to an offline machine and pass --weights DIR). Rerunning finds the verified files and downloads nothing;
a corrupted file is reported and fetched again. The hub address comes from HF_ENDPOINT.
"""

from __future__ import annotations

HELP = "download DINOv2 weights once, verified against the hub's SHA-256s (for encode --encoder dinov2-*)"


def add_arguments(parser) -> None:
    from ..encoders.weights import HUB_IDS

    parser.add_argument("model", choices=list(HUB_IDS), help="which DINOv2 (the paper uses dinov2-base)")
    parser.add_argument("--to", default=None, metavar="DIR",
                        help="plain folder to fill, for `encode --weights DIR`; default: the HF cache")
    parser.add_argument("--revision", default="main", help="hub branch, tag or commit")


def run(args) -> int:
    from ..encoders.weights import fetch_weights

    fetch_weights(args.model, to=args.to, revision=args.revision)
    return 0
