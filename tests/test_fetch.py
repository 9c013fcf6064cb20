"""`img2sdf fetch`: the real huggingface_hub download path against a loopback stand-in for the hub."""

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch

from img2sdf.cli.main import main
from img2sdf.encoders import get_encoder
from img2sdf.encoders.weights import RECORD, fetch_weights
from img2sdf.errors import UserError

torch.set_num_threads(1)
REPO = "facebook/dinov2-small"
COMMIT = hashlib.sha1(b"tiny dinov2 commit").hexdigest()


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """The hub endpoints huggingface_hub uses to fetch a model: two servers on 127.0.0.1, like hub + CDN.

    Hub: ``GET /api/models/REPO/revision/REV?blobs=true`` (file list with sizes, git blob ids, LFS SHA-256s)
    and ``HEAD|GET /REPO/resolve/REV/FILE`` (X-Repo-Commit, ETag; for LFS files a 302 to the CDN with
    X-Linked-Etag and X-Linked-Size). CDN: the LFS bodies by SHA-256. Each server answers at most
    ``max_requests`` requests and stops by itself after ``lifetime`` seconds.
    """

    def __init__(self, files: dict[str, bytes], lfs: set[str], max_requests=40, lifetime=60.0):
        self.files, self.lfs, self.served = files, lfs, dict(files)  # `served` may be tampered with
        self.requests: list[tuple[str, str]] = []
        self.hub, self.cdn = (HTTPServer(("127.0.0.1", 0), self._handler(role)) for role in ("hub", "cdn"))
        self.url = f"http://127.0.0.1:{self.hub.server_port}"
        self.cdn_url = f"http://127.0.0.1:{self.cdn.server_port}"
        self.live, self.deadline, self.max_requests = True, time.monotonic() + lifetime, max_requests
        self.threads = [threading.Thread(target=self._serve, args=(server,), daemon=True)
                        for server in (self.hub, self.cdn)]
        for t in self.threads:
            t.start()

    def _serve(self, server):
        server.timeout = 0.1
        while self.live and len(self.requests) < self.max_requests and time.monotonic() < self.deadline:
            server.handle_request()
        server.server_close()

    def stop(self):
        self.live = False
        for t in self.threads:
            t.join()

    def sibling(self, name):
        data = self.files[name]
        if name not in self.lfs:
            return {"rfilename": name, "size": len(data), "blobId": git_blob_id(data)}
        sha = hashlib.sha256(data).hexdigest()
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n".encode()
        return {"rfilename": name, "size": len(data), "blobId": git_blob_id(pointer),
                "lfs": {"size": len(data), "sha256": sha, "pointerSize": len(pointer)}}

    def respond(self, role, path):
        """(status, headers, body) for a GET; HEAD sends the same without the body."""
        info_prefix, resolve_prefix = f"/api/models/{REPO}/revision/", f"/{REPO}/resolve/"
        if role == "cdn":
            by_sha = {hashlib.sha256(self.files[n]).hexdigest(): n for n in self.lfs}
            name = by_sha.get(path.lstrip("/"))
            return (200, {}, self.served[name]) if name else (404, {}, b"")
        if path.startswith(info_prefix) and path[len(info_prefix):] in ("main", COMMIT):
            info = {"id": REPO, "sha": COMMIT, "siblings": [self.sibling(n) for n in self.files]}
            return 200, {"Content-Type": "application/json"}, json.dumps(info).encode()
        if path.startswith(resolve_prefix):
            revision, _, name = path[len(resolve_prefix):].partition("/")
            if revision in ("main", COMMIT) and name in self.files:
                data, head = self.files[name], {"X-Repo-Commit": COMMIT}
                if name not in self.lfs:
                    return 200, {**head, "ETag": f'"{git_blob_id(data)}"'}, self.served[name]
                sha = hashlib.sha256(data).hexdigest()
                return 302, {**head, "ETag": f'"{self.sibling(name)["blobId"]}"', "X-Linked-Etag": f'"{sha}"',
                             "X-Linked-Size": str(len(data)), "Location": f"{self.cdn_url}/{sha}"}, b""
        return 404, {"X-Error-Code": "EntryNotFound"}, b""

    def _handler(self, role):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self, send_body=True):
                path = urlsplit(self.path).path
                hub.requests.append((f"{role} {self.command}", path))
                status, headers, body = hub.respond(role, path)
                self.send_response(status)
                for key, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()
                if send_body:
                    self.wfile.write(body)

            def do_HEAD(self):
                self.do_GET(send_body=False)

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture(scope="module")
def tiny_files(tiny_dinov2):
    """The tiny DINOv2 of conftest.py as the hub serves it, plus a pickle decoy that must never be fetched."""
    files = {p.name: p.read_bytes() for p in tiny_dinov2.iterdir()}
    files["pytorch_model.bin"] = b"pickle that must never be fetched"
    return tiny_dinov2, files


@pytest.fixture()
def hub(tiny_files, tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    fake = FakeHub(tiny_files[1], lfs={"model.safetensors", "pytorch_model.bin"})
    # What HF_ENDPOINT sets at import; hf_hub_url builds file URLs from the template, not from ENDPOINT.
    monkeypatch.setattr(constants, "ENDPOINT", fake.url)
    template = fake.url + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    yield fake
    fake.stop()


def downloads(hub):
    return [path for kind, path in hub.requests if kind.endswith("GET") and "/api/" not in path]


def test_fetch_verifies_records_and_loads_into_the_encoder(hub, tiny_files, tmp_path, capsys):
    to = tmp_path / "weights"
    assert fetch_weights("dinov2-small", to=to) == to
    assert sorted(downloads(hub)) == sorted([f"/{REPO}/resolve/{COMMIT}/config.json",
                                            "/" + hashlib.sha256(hub.files["model.safetensors"]).hexdigest()])
    assert not any("pytorch_model.bin" in p for _, p in hub.requests)
    record = json.loads((to / RECORD).read_text())
    assert record["commit"] == COMMIT
    for name in ("config.json", "model.safetensors"):
        assert (to / name).read_bytes() == hub.files[name]
        assert record["files"][name]["sha256"] == hashlib.sha256(hub.files[name]).hexdigest()
    assert "fetched and verified" in capsys.readouterr().out

    images = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    fetched = get_encoder("dinov2-small", weights=str(to)).encode(images)
    original = get_encoder("dinov2-small", weights=str(tiny_files[0])).encode(images)
    assert fetched.shape == (3, 32)
    np.testing.assert_array_equal(fetched, original)

    n = len(downloads(hub))
    fetch_weights("dinov2-small", to=to)  # second call: verified, nothing downloaded
    assert len(downloads(hub)) == n
    assert "already fetched and verified; nothing downloaded" in capsys.readouterr().out


def test_corrupted_file_is_reported_and_fetched_again(hub, tmp_path, capsys):
    to = tmp_path / "weights"
    fetch_weights("dinov2-small", to=to)
    weights = to / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size: only the hash can tell
    weights.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"model.safetensors missing or not matching the SHA-256"):
        get_encoder("dinov2-small", weights=str(to))  # checked before use, too
    n = len(downloads(hub))
    fetch_weights("dinov2-small", to=to)
    assert f"{weights}: SHA-256" in capsys.readouterr().out
    assert len(downloads(hub)) == n + 1  # only the corrupted file
    assert weights.read_bytes() == hub.files["model.safetensors"]


def test_corrupt_download_is_removed_with_a_one_line_error(hub, tmp_path):
    good = hub.files["model.safetensors"]
    hub.served["model.safetensors"] = good[:-1] + bytes([good[-1] ^ 0xFF])
    with pytest.raises(UserError, match=r"model.safetensors: downloaded from .*SHA-256.*removed it") as e:
        fetch_weights("dinov2-small", to=tmp_path / "weights")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "weights" / "model.safetensors").exists()
    assert not (tmp_path / "weights" / RECORD).exists()


def test_interrupted_download_leaves_no_file_that_passes_as_complete(hub, tmp_path):
    hub.served["model.safetensors"] = hub.files["model.safetensors"][:5000]  # body cut short
    weights = tmp_path / "weights"
    with pytest.raises(UserError, match=r"safetensors: download from .* failed .*no partial file"):
        fetch_weights("dinov2-small", to=weights)
    assert not [p for p in weights.rglob("*safetensors*") if p.suffix != ".lock"]  # nor an .incomplete one
    assert (weights / "config.json").is_file() and not (weights / RECORD).exists()
    hub.served["model.safetensors"] = hub.files["model.safetensors"]
    fetch_weights("dinov2-small", to=weights)  # the rerun completes it
    assert (weights / RECORD).is_file()


def test_encode_fetches_only_when_asked_then_works_offline(hub, tmp_path, capsys, monkeypatch):
    import trimesh

    from img2sdf.data.render import RenderConfig, render_shape
    from img2sdf.data.store import Manifest, ShapeEntry, ShapeStore
    from img2sdf.io import write_mesh

    store = ShapeStore(tmp_path / "data")
    store.save_manifest(Manifest([ShapeEntry(0, "a", "ball", "train", "test", status="ok")]))
    write_mesh(store.mesh_path(0), trimesh.creation.icosphere(2, radius=0.8))
    render_shape(store, 0, RenderConfig(views=4, resolution=56))
    encode = ["encode", str(store.root), "--encoder", "dinov2-small"]

    assert main(encode) == 2  # never downloads implicitly, says how to
    assert "run `img2sdf fetch dinov2-small`" in capsys.readouterr().err and not hub.requests
    assert main([*encode, "--fetch"]) == 0  # into the HF cache, found there by the branch name
    out = capsys.readouterr().out
    snapshot = Path(tmp_path / "hf-cache" / "models--facebook--dinov2-small" / "snapshots" / COMMIT)
    assert f"{snapshot}: {REPO} @ {COMMIT[:12]} fetched and verified" in out
    assert "1 of 1 shapes x 4 views x 32 dims" in out
    import huggingface_hub.constants as constants

    n = len(hub.requests)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError, match=r"\(OfflineModeIsEnabled\) and .*elsewhere holds no verified"):
        fetch_weights("dinov2-small", to=tmp_path / "elsewhere")
    assert len(hub.requests) == n  # HF_HUB_OFFLINE=1: not a single request
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    hub.stop()
    assert main(["fetch", "dinov2-small"]) == 0  # hub down, but the cached copy matches its record
    assert "hub unreachable" in capsys.readouterr().out
    assert main(["fetch", "dinov2-small", "--to", str(tmp_path / "elsewhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach the Hugging Face hub at http://127.0.0.1:" in err[0]
    assert "holds no verified facebook/dinov2-small config.json or model.safetensors" in err[0]
    assert "`img2sdf fetch dinov2-small --to DIR`" in err[0]
