"""Serve the web demo: upload 1-8 photos of an object in a browser, get a mesh (paper §6 pipeline).

Example: ``img2sdf serve`` (the bundled model) or ``img2sdf serve --model runs/demo/dit``, then open http://127.0.0.1:7860.
The page shows the stage timings, the five nearest training shapes by latent cosine (§1.2 ii), a turntable
preview and GLB/OBJ/STL downloads. Requests are generated one at a time; the newest results are kept in a
temporary folder (or --results) and older ones deleted.
"""

from __future__ import annotations

from pathlib import Path

from .options import add_device

HELP = "web demo: photos → mesh in the browser (FastAPI + uvicorn)"


def add_arguments(parser) -> None:
    parser.add_argument("--model", type=Path, default=None,
                        help="DiT run folder (from train-dit) or a bundle (default: the model bundled with "
                             "img2sdf, trained on 976 synthetic shapes)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (the default is this machine only; 0.0.0.0 shares it)")
    parser.add_argument("--port", type=int, default=7860, help="TCP port")
    parser.add_argument("--results", type=Path, default=None,
                        help="folder for result meshes and previews (default: a temp folder removed on exit)")
    parser.add_argument("--max-results", type=int, default=32, help="results kept; older ones are deleted")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest for the tiny model on a busy shared CPU)")
    add_device(parser, "the encoder, DiT and decoder")


def run(args) -> int:
    import torch
    import uvicorn

    from ..app import create_app
    from ..errors import UserError
    from ..generate.pipeline import ImageToShape

    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: use 1 to 65535")
    torch.set_num_threads(max(1, args.threads))
    model = ImageToShape.load(args.model, device=args.device)
    # The encoder loads now, so a missing one is an error at start rather than on the first upload.
    print(f"serve: {args.model or 'the bundled model'} (encoder {model.encoder.name}, "
          f"{len(model.train_obj_idx)} training shapes)")
    sock = listen(args.host, args.port)  # before create_app makes its temp folder
    app = create_app(model, args.results, args.max_results)
    print(f"serve: open http://{args.host}:{args.port} (Ctrl-C stops)")
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    return 0


def listen(host: str, port: int):
    """A bound socket, so a taken port or a bad address is a one-line error (uvicorn would exit itself)."""
    import socket

    from ..errors import UserError

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        raise UserError(f"--host {host} --port {port}: cannot listen ({e.strerror or e})") from e
    return sock
