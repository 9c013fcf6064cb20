"""Entry point: ``img2sdf <command> ...``.

Each command lives in its own module exposing ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Modules import heavy libraries (torch, transformers) inside ``run`` so that
``img2sdf --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import UserError

# command name -> module under img2sdf.cli, in data-flow order (= order in --help)
COMMANDS: dict[str, str] = {
    "prepare": "prepare",
    "preview": "preview",
    "encode": "encode",
    "fetch": "fetch",
    "fit": "fit",
    "fit-mlps": "fit_mlps",
    "mesh": "mesh",
    "reconstruct": "reconstruct",
    "eval": "eval",
    "train-dit": "train_dit",
    "train-wdit": "train_wdit",
    "train-wae": "train_wae",
    "generate": "generate",
    "bundle": "bundle",
    "eval-gen": "eval_gen",
    "diagnose": "diagnose",
    "study": "study",
    "serve": "serve",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="img2sdf",
        description="Image-conditioned 3-D shape generation: prepare data, fit DeepSDF, train a latent DiT, "
        "generate and evaluate.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"{__package__}.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "device", None) is not None:  # a missing device fails before any work starts
            from ..devices import choose_device

            choose_device(int(os.environ.get("LOCAL_RANK", "0")), args.device)
        return int(args._run(args) or 0)
    except UserError as e:
        print(f"img2sdf {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"img2sdf {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
