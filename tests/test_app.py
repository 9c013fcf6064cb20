"""The web demo's API (``img2sdf serve``) through FastAPI's TestClient on the shared tiny DiT run."""

from __future__ import annotations

import io
import socket

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
                    data={**FAST, "seed": "3"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert set(answer["timings"]) == {"decode", "encode", "sample", "mesh", "preview", "total"}
    assert answer["warnings"] == [] and answer["views"] == 1 and answer["watertight"]

    glb = client.get(answer["downloads"]["glb"])
    assert glb.status_code == 200 and glb.content[:4] == b"glTF"
    mesh = trimesh.load(io.BytesIO(glb.content), file_type="glb", force="mesh")
    assert mesh.is_watertight and len(mesh.faces) == answer["faces"]
    assert np.abs(mesh.bounds).max() <= 1.05  # the decoder's shapes live in the unit cube

    # The server runs the real pipeline: the same view and seed called directly give the same result.
    (tmp_path / "box.jpg").write_bytes(photo)
    direct = model.generate(load_view(tmp_path / "box.jpg")[None], seed=3, steps=10, resolution=32)
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
    ([(f"v{k}.jpg", b"x") for k in range(9)], {}, "give 1 to 8 images, got 9"),
    ([], {}, "give 1 to 8 images, got 0"),
    ([("a.jpg", b"x")], {"steps": "many"}, "steps: 'many' is not a whole number"),
    ([("a.jpg", b"x")], {"resolution": "100"}, "resolution: 100 is not offered"),
    ([("a.jpg", b"x")], {"seed": "-1"}, "seed: -1 is out of range"),
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
