"""The web demo's FastAPI app: upload 1-8 photos → the §6 pipeline → a turntable preview and a mesh download.

``POST /api/generate`` (multipart: ``images`` files, ``seed``/``steps``/``samples``/``resolution`` fields)
runs :meth:`ImageToShape.generate` in a worker thread, one request at a time, and answers JSON with the stage
timings, the top-5 training neighbours by latent cosine (§1.2 ii), any busy-background warnings and the URLs
of the preview strip and the mesh (GLB, or OBJ/STL converted on first request). Bad input answers HTTP 400
``{"error": "one line"}``. Each result lives in its own folder; only the most recently used are kept.

Limits, so that one client cannot exhaust a small public box: the body is counted while it streams in
(with or without Content-Length) and cut off beyond :data:`MAX_BODY_BYTES` with 413; the multipart parser
stops at :data:`MAX_VIEWS` files; at most one request generates and :data:`MAX_WAITING` more wait (while
uploading or queued), beyond that 503 with ``Retry-After`` and ``{"error": "busy, retry in N s"}``. A
client that disconnects cancels its job: a queued job never starts, a running one stops at its next
decoder or DiT forward pass, and its result folder is deleted. Jobs run on one worker thread (one
malloc arena: a thread per job let the peak memory grow with the number of threads that ever generated).
Uploads stay in Starlette's spooled
temporary files (on disk beyond 1 MB, never named in the file system) until the job has copied them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import shutil
import tempfile
import threading
import time
import uuid
import warnings
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from ..errors import UserError
from ..generate import DEFAULT_SAMPLES, MAX_SAMPLES, check_sampling

STATIC = Path(__file__).parent / "static"
MAX_VIEWS = 8
MAX_IMAGE_MB = 20
MAX_IMAGE_BYTES = MAX_IMAGE_MB * 2**20
MAX_BODY_BYTES = MAX_VIEWS * MAX_IMAGE_BYTES + 2**20  # eight full-size images plus the form fields
MAX_WAITING = 4  # requests that may wait (uploading or queued) behind the one generating
RESOLUTIONS = (32, 64, 96, 128, 192, 256)  # marching-cubes grids offered; 256³ is ≈ 17 M decoder queries
MAX_STEPS = 1000
TURNTABLE = [(35.0 + 90.0 * k, 25.0) for k in range(4)]  # (azimuth, elevation): the 3/4 view, then each side
PREVIEW_PX = 256
MESH_FORMATS = ("glb", "obj", "stl")
RESULT_ID = re.compile(r"[0-9a-f]{12}")


class Busy(Exception):
    """More than MAX_WAITING requests already wait; ``retry_after`` seconds is the estimated wait."""

    def __init__(self, retry_after: int):
        super().__init__(f"busy, retry in {retry_after} s")
        self.retry_after = retry_after


class Cancelled(Exception):
    """The client of a job disconnected."""


class BodyTooLarge(Exception):
    pass


@dataclass
class Options:
    seed: int = 0
    steps: int | None = None  # None: the run's own sample_steps
    resolution: int = 128
    samples: int = DEFAULT_SAMPLES  # DDIM samples drawn; their medoid is meshed (generate's default pick)


class ResultStore:
    """Per-request result folders under ``root``; beyond ``capacity`` the least recently used is deleted."""

    def __init__(self, root: Path, capacity: int):
        if capacity < 1:
            raise UserError(f"--max-results {capacity}: keep at least 1 result")
        self.root, self.capacity = Path(root), capacity
        self.root.mkdir(parents=True, exist_ok=True)
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def new_folder(self) -> tuple[str, Path]:
        rid = uuid.uuid4().hex[:12]
        folder = self.root / rid
        folder.mkdir()
        return rid, folder

    def add(self, rid: str) -> None:
        """Register a completed folder, evicting the least recently used beyond capacity."""
        with self._lock:
            self._ids[rid] = None
            while len(self._ids) > self.capacity:
                old, _ = self._ids.popitem(last=False)
                shutil.rmtree(self.root / old, ignore_errors=True)

    def folder(self, rid: str) -> Path:
        """The folder of a kept result (marks it used); KeyError if unknown or evicted."""
        with self._lock:
            if not RESULT_ID.fullmatch(rid) or rid not in self._ids:
                raise KeyError(rid)
            self._ids.move_to_end(rid)
            return self.root / rid

    def __len__(self) -> int:
        return len(self._ids)


class DemoService:
    """The loaded pipeline, the result store, the lock that serialises generation and the bounded queue."""

    def __init__(self, model, results: ResultStore, max_waiting: int = MAX_WAITING):
        self.model = model
        self.results = results
        self.max_waiting = max_waiting
        self._lock = threading.Lock()
        self._admitted = 0  # requests between admit() and release(): the one generating plus the waiting
        self._count_lock = threading.Lock()
        self._seconds = 5.0  # running mean of the job time, for Retry-After
        self._cancel: threading.Event | None = None  # the running job's, checked at every forward pass
        self._hooks = [module.register_forward_pre_hook(self._check_cancelled)
                       for module in (model.decoder, model.dit.model)]

    def close(self) -> None:
        """Detach from the model (its forward hooks), e.g. when the app shuts down."""
        for hook in self._hooks:
            hook.remove()

    def _check_cancelled(self, module, args) -> None:
        event = self._cancel
        if event is not None and event.is_set():
            raise Cancelled()

    def admit(self) -> None:
        """Reserve a place for a request (generating or waiting), or raise :class:`Busy`."""
        with self._count_lock:
            if self._admitted > self.max_waiting:
                raise Busy(max(1, math.ceil(self._seconds * self._admitted)))
            self._admitted += 1

    def release(self) -> None:
        with self._count_lock:
            self._admitted -= 1

    def info(self) -> dict:
        dit = self.model.dit
        return {"model": str(dit.path), "encoder": dit.info.get("encoder", "?"),
                "steps": dit.config.sample_steps, "max_steps": min(MAX_STEPS, dit.diffusion.timesteps),
                "samples": DEFAULT_SAMPLES, "max_samples": MAX_SAMPLES,
                "max_images": MAX_VIEWS, "max_image_mb": MAX_IMAGE_MB, "resolutions": list(RESOLUTIONS),
                "training_shapes": len(self.model.train_obj_idx)}

    def parse_options(self, fields: dict[str, str]) -> Options:
        """Form fields → :class:`Options`; blank fields keep their defaults."""
        values = {}
        for name in ("seed", "steps", "resolution", "samples"):
            raw = (fields.get(name) or "").strip()
            if raw:
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise UserError(f"{name}: {raw!r} is not a whole number") from None
        opts = Options(**values)
        if not 0 <= opts.seed < 2**31:
            raise UserError(f"seed: {opts.seed} is out of range; use 0 to {2**31 - 1}")
        max_steps = min(MAX_STEPS, self.model.dit.diffusion.timesteps)
        if opts.steps is not None and not 1 <= opts.steps <= max_steps:
            raise UserError(f"steps: {opts.steps} is out of range; use 1 to {max_steps}")
        check_sampling(opts.samples)
        if opts.resolution not in RESOLUTIONS:
            raise UserError(f"resolution: {opts.resolution} is not offered; use one of "
                            f"{', '.join(map(str, RESOLUTIONS))}")
        return opts

    @staticmethod
    def check_uploads(uploads: list[tuple[str, object, int]]) -> None:
        """(filename, file, size in bytes) of the uploads: 1-8 files of at most MAX_IMAGE_MB each."""
        if not 1 <= len(uploads) <= MAX_VIEWS:
            raise UserError(f"give 1 to {MAX_VIEWS} images, got {len(uploads)}")
        for name, _, size in uploads:
            if size > MAX_IMAGE_BYTES:
                raise UserError(f"{name}: {size / 2**20:.1f} MB exceeds the {MAX_IMAGE_MB} MB limit; "
                                "downscale it first")

    def generate(self, uploads: list[tuple[str, object, int]], opts: Options,
                 cancel: threading.Event | None = None) -> dict:
        """(filename, file, size) of 1-8 images → the JSON answer; runs in a worker thread, one at a time.

        ``cancel`` set (the client left) stops the job before it starts or at its next forward pass."""
        self.check_uploads(uploads)
        cancel = cancel or threading.Event()
        while not self._lock.acquire(timeout=0.2):  # queued: a client that leaves takes its job along
            if cancel.is_set():
                raise Cancelled()
        try:
            if cancel.is_set():
                raise Cancelled()
            rid, folder = self.results.new_folder()
            self._cancel, t0 = cancel, time.perf_counter()
            try:
                answer = self._run(rid, folder, uploads, opts, cancel)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            finally:
                self._cancel = None
                self._seconds = 0.7 * self._seconds + 0.3 * (time.perf_counter() - t0)
                _trim_heap()
        finally:
            self._lock.release()
        self.results.add(rid)
        return answer

    def _run(self, rid: str, folder: Path, uploads: list[tuple[str, object, int]], opts: Options,
             cancel: threading.Event) -> dict:
        from ..eval.gallery import thumbnail
        from ..io import write_image, write_mesh

        t0 = time.perf_counter()
        views, notes = self._load_views(folder / "inputs", uploads, cancel)
        if self.model.dit.config.pose_dropout == 0:
            notes.append("this model never trained its unknown-pose token (pose_dropout = 0), so photos "
                         "without camera poses may give poor shapes")
        decode = time.perf_counter() - t0
        result = self.model.generate(views, None, seed=opts.seed, steps=opts.steps,
                                     resolution=opts.resolution, samples=opts.samples)
        mesh = result.mesh
        if cancel.is_set():
            raise Cancelled()
        if len(mesh.faces) == 0:
            raise UserError("the decoder's surface is empty for this latent; try another seed")
        write_mesh(folder / "mesh.glb", mesh)
        t = time.perf_counter()
        write_image(folder / "preview.png",
                    np.hstack([thumbnail(mesh, PREVIEW_PX, view) for view in TURNTABLE]))
        write_image(folder / "inputs.png", np.hstack(list(views)))
        timings = {"decode": decode, **result.timings, "preview": time.perf_counter() - t}
        timings["total"] = time.perf_counter() - t0
        base = f"/api/results/{rid}"
        return {
            "id": rid, "views": len(views), "seed": opts.seed,
            "steps": opts.steps or self.model.dit.config.sample_steps, "samples": opts.samples,
            "resolution": opts.resolution,
            "vertices": len(mesh.vertices), "faces": len(mesh.faces), "watertight": bool(mesh.is_watertight),
            "timings": {k: round(v, 3) for k, v in timings.items()},
            "neighbours": [{"rank": i + 1, "obj_idx": n["obj_idx"], "uid": n["uid"],
                            "category": n["category"], "cos": round(n["cos"], 4)}
                           for i, n in enumerate(result.neighbours)],
            "warnings": notes + result.warnings,  # off-range latent, degenerate mesh (generate/guard.py)
            "preview": f"{base}/preview.png", "inputs": f"{base}/inputs.png",
            "downloads": {fmt: f"{base}/mesh.{fmt}" for fmt in MESH_FORMATS},
        }

    @staticmethod
    def _load_views(folder: Path, uploads: list[tuple[str, object, int]], cancel: threading.Event
                    ) -> tuple[np.ndarray, list[str]]:
        """Uploads → framed 224² views (``load_view``); messages name the uploaded file, not the temp copy."""
        from ..data.images import load_view

        views, notes = [], []
        folder.mkdir(parents=True, exist_ok=True)
        for k, (name, file, _) in enumerate(uploads):
            if cancel.is_set():
                raise Cancelled()
            path = folder / f"{k}{Path(name).suffix.lower()[:8]}"
            file.seek(0)
            with open(path, "wb") as out:
                shutil.copyfileobj(file, out, 2**20)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    views.append(load_view(path))
                except UserError as e:
                    raise UserError(str(e).replace(str(path), name)) from None
            notes += [str(w.message).replace(str(path), name) for w in caught]
        return np.stack(views), notes

    def mesh_file(self, rid: str, fmt: str) -> Path:
        """The result's mesh in ``fmt``; OBJ/STL are converted from the GLB on first request."""
        import trimesh

        from ..io import write_mesh

        if fmt not in MESH_FORMATS:
            raise UserError(f"mesh.{fmt}: unknown format; use one of {', '.join(MESH_FORMATS)}")
        folder = self.results.folder(rid)
        path = folder / f"mesh.{fmt}"
        if not path.is_file():
            write_mesh(path, trimesh.load(folder / "mesh.glb", force="mesh", process=False))
        return path


def create_app(model, results_dir: str | Path | None = None, max_results: int = 32):
    """The FastAPI app serving ``model`` (an :class:`~img2sdf.generate.pipeline.ImageToShape`).

    Results go to ``results_dir`` (default: a temp folder deleted at shutdown), at most ``max_results`` kept.
    """
    owned = results_dir is None
    root = Path(tempfile.mkdtemp(prefix="img2sdf-serve-")) if owned else Path(results_dir)
    service = DemoService(model, ResultStore(root, max_results))
    worker = ThreadPoolExecutor(1, thread_name_prefix="img2sdf-generate")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        worker.shutdown(cancel_futures=True)
        service.close()
        if owned:
            shutil.rmtree(root, ignore_errors=True)

    app = FastAPI(title="img2sdf", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(UserError)
    async def user_error(request, exc: UserError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(Busy)
    async def busy(request, exc: Busy):
        return JSONResponse({"error": str(exc), "retry_after": exc.retry_after}, status_code=503,
                            headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/api/info")
    async def info():
        return service.info()

    @app.post("/api/generate")
    async def generate(request: Request):
        service.admit()  # Busy (503) before a byte of the body is read
        try:
            return await _generate(request)
        finally:
            service.release()

    async def _generate(request: Request):
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            return _too_large(int(length))
        request = Request(request.scope, _limited(request.receive, MAX_BODY_BYTES))
        try:
            form = await request.form(max_files=MAX_VIEWS, max_fields=16)
        except BodyTooLarge:
            return _too_large(None)
        except ClientDisconnect:
            return JSONResponse({"error": "the client disconnected during the upload"}, status_code=499)
        except HTTPException as e:
            if "Too many files" in str(e.detail):
                raise UserError(f"give 1 to {MAX_VIEWS} images; the upload has more") from None
            raise UserError(f"upload: {e.detail}") from None
        try:
            files = [f for f in form.getlist("images") if not isinstance(f, str)]
            opts = service.parse_options({k: v for k, v in form.items() if isinstance(v, str)})
            uploads = [(Path(f.filename or f"image{k}").name, f.file, f.size or 0)
                       for k, f in enumerate(files)]
            service.check_uploads(uploads)
            cancel = threading.Event()
            future = worker.submit(service.generate, uploads, opts, cancel)
            job = asyncio.wrap_future(future)
            while not (await asyncio.wait({job}, timeout=0.25))[0]:
                if await request.is_disconnected():
                    cancel.set()  # a running job stops at its next forward pass: its answer reaches no one
                    if future.cancel():  # still queued: it never starts
                        return _cancelled()
            try:
                return job.result()
            except Cancelled:
                return _cancelled()
        finally:
            await form.close()

    @app.get("/api/results/{rid}/{name}")
    async def result_file(rid: str, name: str):
        stem, _, fmt = name.partition(".")
        try:
            if stem == "mesh":
                path = await run_in_threadpool(service.mesh_file, rid, fmt)
                return FileResponse(path, filename=f"img2sdf-{rid}.{fmt}")
            if name in ("preview.png", "inputs.png"):
                return FileResponse(service.results.folder(rid) / name, media_type="image/png")
        except KeyError:
            raise HTTPException(404, f"result {rid} is unknown or expired; generate again") from None
        raise HTTPException(404, f"{name}: no such file; results have preview.png, inputs.png, "
                                 f"mesh.{{{','.join(MESH_FORMATS)}}}")

    return app


def _cancelled() -> JSONResponse:
    return JSONResponse({"error": "cancelled: the client disconnected"}, status_code=499)


def _too_large(length: int | None) -> JSONResponse:
    size = "" if length is None else f" of {length / 2**20:.0f} MB"
    return JSONResponse({"error": f"upload{size} is too large; send at most {MAX_VIEWS} images of "
                                  f"{MAX_IMAGE_MB} MB each ({MAX_BODY_BYTES / 2**20:.0f} MB in all)"},
                        status_code=413)


def _trim_heap() -> None:
    """Give freed heap pages back to the OS after a job (glibc keeps them otherwise; elsewhere a no-op)."""
    import ctypes
    import ctypes.util

    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


def _limited(receive, limit: int):
    """An ASGI ``receive`` that counts the body as it streams and raises BodyTooLarge beyond ``limit``."""
    seen = 0

    async def wrapped():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge()
        return message

    return wrapped
