"""The web demo's API (``img2sdf serve``) through FastAPI's TestClient on the shared tiny DiT run."""

from __future__ import annotations

import io
import socket
import threading
import time

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image
from starlette.testclient import TestClient
from test_generate import tiny_runs  # noqa: F401  (the shared tiny store + decoder + DiT fixture)

from img2sdf.app import create_app, server
from img2sdf.cli.main import main
from img2sdf.cli.serve import listen
from img2sdf.data.images import load_view
from img2sdf.data.store import ShapeStore
from img2sdf.encoders.cache import load_render_views
from img2sdf.errors import UserError
from img2sdf.generate.pipeline import ImageToShape

FAST = {"steps": "10", "resolution": "32"}


def studio_photo(tiny_runs, obj: int, view: int = 2) -> bytes:  # noqa: F811
    """A training render as a user would shoot it: opaque JPEG on a white background."""
    views, _ = load_render_views(ShapeStore(tiny_runs["data"]), obj)
    photo = np.where(views[view].sum(-1, keepdims=True) > 0, views[view], 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(photo).resize((300, 300)).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


@pytest.fixture(scope="module")
def model(tiny_runs):  # noqa: F811
    torch.set_num_threads(1)
    return ImageToShape.load(tiny_runs["dit"])


@pytest.fixture
def client(model, tmp_path):
    with TestClient(create_app(model, tmp_path / "results", max_results=4)) as c:
        yield c


def test_upload_gives_the_pipelines_mesh_preview_and_neighbours(client, model, tiny_runs, tmp_path):  # noqa: F811
    photo = studio_photo(tiny_runs, 2)
    r = client.post("/api/generate", files=[("images", ("box.jpg", photo, "image/jpeg"))],
                    data={**FAST, "seed": "3", "samples": "3"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["samples"] == 3
    assert set(answer["timings"]) == {"decode", "encode", "sample", "mesh", "preview", "total"}
    assert answer["warnings"] == [] and answer["views"] == 1 and answer["watertight"]

    glb = client.get(answer["downloads"]["glb"])
    assert glb.status_code == 200 and glb.content[:4] == b"glTF"
    mesh = trimesh.load(io.BytesIO(glb.content), file_type="glb", force="mesh")
    assert mesh.is_watertight and len(mesh.faces) == answer["faces"]
    assert np.abs(mesh.bounds).max() <= 1.05  # the decoder's shapes live in the unit cube

    # The server runs the real pipeline: the same view and seed called directly give the same result.
    (tmp_path / "box.jpg").write_bytes(photo)
    direct = model.generate(load_view(tmp_path / "box.jpg")[None], seed=3, steps=10, resolution=32, samples=3)
    assert len(direct.mesh.faces) == answer["faces"]
    assert [(n["obj_idx"], n["category"]) for n in answer["neighbours"]] == \
        [(n["obj_idx"], n["category"]) for n in direct.neighbours]
    assert np.allclose([n["cos"] for n in answer["neighbours"]], [n["cos"] for n in direct.neighbours],
                       atol=1e-4)
    assert len(answer["neighbours"]) == 5 and {n["category"] for n in answer["neighbours"]} <= \
        {"sphere", "box", "torus"}

    for fmt in ("obj", "stl"):
        other = client.get(answer["downloads"][fmt])
        assert other.status_code == 200
        assert other.headers["content-disposition"].endswith(f'.{fmt}"')
        converted = trimesh.load(io.BytesIO(other.content), file_type=fmt, force="mesh")
        assert np.allclose(converted.bounds, mesh.bounds, atol=1e-4)
    preview = np.asarray(Image.open(io.BytesIO(client.get(answer["preview"]).content)))
    assert preview.shape == (server.PREVIEW_PX, len(server.TURNTABLE) * server.PREVIEW_PX, 3)
    tiles = np.split(preview, len(server.TURNTABLE), axis=1)
    assert all(tile.max() > 50 for tile in tiles)  # every turntable view shows the mesh
    assert not np.array_equal(tiles[0], tiles[1])
    inputs = Image.open(io.BytesIO(client.get(answer["inputs"]).content))
    assert inputs.size == (224, 224)


def test_busy_background_and_several_views(client, tiny_runs):  # noqa: F811
    rng = np.random.default_rng(0)
    noise = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(noise, format="PNG")
    files = [("images", ("studio.jpg", studio_photo(tiny_runs, 4, v), "image/jpeg")) for v in (1, 5)]
    files.append(("images", ("street.png", noise.getvalue(), "image/png")))
    r = client.post("/api/generate", files=files, data=FAST)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["views"] == 3
    assert len(answer["warnings"]) == 1 and answer["warnings"][0].startswith("street.png: busy background")


@pytest.mark.parametrize("files, data, message", [
    ([("notes.png", b"just some text")], {}, "notes.png: not an image PIL can read"),
    ([(f"v{k}.jpg", b"x") for k in range(9)], {}, "give 1 to 8 images; the upload has more"),
    ([(f"v{k}.jpg", b"x") for k in range(32)], {}, "give 1 to 8 images; the upload has more"),
    ([], {}, "give 1 to 8 images, got 0"),
    ([("a.jpg", b"x")], {"steps": "many"}, "steps: 'many' is not a whole number"),
    ([("a.jpg", b"x")], {"resolution": "100"}, "resolution: 100 is not offered"),
    ([("a.jpg", b"x")], {"seed": "-1"}, "seed: -1 is out of range"),
    ([("a.jpg", b"x")], {"samples": "0"}, "samples: 0 is out of range"),
    ([("a.jpg", b"x")], {"samples": "65"}, "samples: 65 is out of range"),
])
def test_bad_uploads_are_400_with_one_line(client, files, data, message):
    r = client.post("/api/generate", files=[("images", (n, b, "image/png")) for n, b in files] or None,
                    data=data)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error.startswith(message) and "\n" not in error
    assert client.app.state.service.results.root.is_dir()
    assert list(client.app.state.service.results.root.iterdir()) == []  # no half result kept


def test_too_large_upload_is_refused(client, monkeypatch):
    monkeypatch.setattr(server, "MAX_IMAGE_BYTES", 1000)
    r = client.post("/api/generate", files=[("images", ("big.png", b"\0" * 1001, "image/png"))])
    assert r.status_code == 400
    assert r.json()["error"].startswith("big.png: ") and "MB limit" in r.json()["error"]


def test_unknown_results_are_404(client):
    for url in ("/api/results/0123456789ab/mesh.glb", "/api/results/..%2F..%2Fetc/preview.png",
                "/api/results/0123456789ab/secret.txt"):
        r = client.get(url)
        assert r.status_code == 404 and r.json()["error"]


def test_page_and_info(client, model):
    page = client.get("/")
    assert page.status_code == 200 and 'id="images"' in page.text and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200
    info = client.get("/api/info").json()
    assert info["steps"] == model.dit.config.sample_steps and info["max_images"] == 8
    assert (info["samples"], info["max_samples"]) == (server.DEFAULT_SAMPLES, server.MAX_SAMPLES)


def test_result_store_keeps_the_most_recently_used(tmp_path):
    store = server.ResultStore(tmp_path, capacity=2)
    ids = []
    for _ in range(3):
        rid, folder = store.new_folder()
        (folder / "mesh.glb").write_bytes(b"x")
        ids.append(rid)
        if len(ids) == 2:
            store.add(ids[0])
            store.add(ids[1])
            store.folder(ids[0])  # used again: now ids[1] is the least recently used
    store.add(ids[2])
    assert len(store) == 2 and sorted(p.name for p in tmp_path.iterdir()) == sorted([ids[0], ids[2]])
    with pytest.raises(KeyError):
        store.folder(ids[1])
    with pytest.raises(KeyError):
        store.folder("../" + ids[0])


def test_serve_cli_errors(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path / "nope")]) == 2
    assert "not a DiT run" in capsys.readouterr().err
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with pytest.raises(UserError, match="cannot listen"):
            listen("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


def _multipart(files: list[tuple[str, bytes]], boundary: str = "img2sdf-test") -> tuple[bytes, dict]:
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="images"; filename="{name}"\r\n'
             f"Content-Type: image/png\r\n\r\n".encode() + data + b"\r\n" for name, data in files]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"content-type": f"multipart/form-data; boundary={boundary}"}


def test_a_body_over_the_cap_is_413_with_or_without_content_length(client, monkeypatch):
    monkeypatch.setattr(server, "MAX_BODY_BYTES", 50_000)
    body, headers = _multipart([("big.png", b"\0" * 60_000)])
    r = client.post("/api/generate", content=body, headers=headers)
    assert r.status_code == 413 and r.json()["error"].startswith("upload of 0 MB is too large")

    sent = []

    def chunks():  # no Content-Length: chunked transfer encoding
        for k in range(0, len(body), 4096):
            sent.append(k)
            yield body[k:k + 4096]

    r = client.post("/api/generate", content=chunks(), headers=headers)
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert error.startswith("upload is too large; send at most 8 images") and "\n" not in error
    assert list(client.app.state.service.results.root.iterdir()) == []
    small, headers = _multipart([("notes.png", b"not an image")])
    r = client.post("/api/generate", content=iter([small]), headers=headers)  # chunked, under the cap
    assert r.status_code == 400 and r.json()["error"].startswith("notes.png: not an image")


def test_beyond_the_queue_bound_the_answer_is_503_with_retry_after(client, tiny_runs):  # noqa: F811
    service = client.app.state.service
    photo_file = [("images", ("box.jpg", studio_photo(tiny_runs, 2), "image/jpeg"))]
    for _ in range(service.max_waiting + 1):  # one generating plus max_waiting waiting
        service.admit()
    try:
        r = client.post("/api/generate", files=photo_file, data=FAST)
        assert r.status_code == 503
        seconds = int(r.headers["retry-after"])
        assert seconds >= 1 and r.json() == {"error": f"busy, retry in {seconds} s", "retry_after": seconds}
    finally:
        for _ in range(service.max_waiting + 1):
            service.release()
    r = client.post("/api/generate", files=photo_file, data=FAST)
    assert r.status_code == 200, r.text


def _upload(tiny_runs):  # noqa: F811
    photo = studio_photo(tiny_runs, 2)
    return [("box.jpg", io.BytesIO(photo), len(photo))]


def test_a_cancelled_job_stops_at_its_next_forward_pass_and_leaves_no_folder(
        model, tiny_runs, tmp_path, monkeypatch):  # noqa: F811
    service = server.DemoService(model, server.ResultStore(tmp_path / "results", 4))
    try:
        cancel = threading.Event()
        cancel.set()
        with pytest.raises(server.Cancelled):  # its client left while it was queued: never starts
            service.generate(_upload(tiny_runs), server.Options(steps=10, resolution=32), cancel)
        meshed = []
        real_mesh = model.mesh

        def disconnect_then_mesh(*args, **kwargs):  # the client leaves after sampling
            cancel.set()
            meshed.append(True)
            return real_mesh(*args, **kwargs)

        cancel = threading.Event()
        monkeypatch.setattr(model, "mesh", disconnect_then_mesh)
        with pytest.raises(server.Cancelled):
            service.generate(_upload(tiny_runs), server.Options(steps=10, resolution=32), cancel)
        assert meshed and list((tmp_path / "results").iterdir()) == [] and len(service.results) == 0
        monkeypatch.undo()
        answer = service.generate(_upload(tiny_runs), server.Options(steps=10, resolution=32))
        assert answer["faces"] > 0  # the hooks stay out of the way of jobs nobody cancelled
    finally:
        service.close()


def test_a_client_that_disconnects_while_queued_leaves_no_job(model, tiny_runs, tmp_path):  # noqa: F811
    import uvicorn

    app = create_app(model, tmp_path / "results", max_results=4)
    service = app.state.service
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    body, headers = _multipart([("box.jpg", studio_photo(tiny_runs, 2))])
    request = (f"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {headers['content-type']}"
               f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    try:
        deadline = time.time() + 60
        while not srv.started and time.time() < deadline:
            time.sleep(0.05)
        with service._lock:  # another job is generating
            client = socket.create_connection(("127.0.0.1", port))
            client.sendall(request)
            while service._admitted == 0 and time.time() < deadline:
                time.sleep(0.05)
            assert service._admitted == 1
            client.close()
            while service._admitted and time.time() < deadline:  # the server notices the disconnect
                time.sleep(0.05)
            assert service._admitted == 0
        assert list((tmp_path / "results").iterdir()) == [] and len(service.results) == 0
    finally:
        srv.should_exit = True
        thread.join(30)
