"""The web demo in a real browser: Debian's Chromium, driven by Playwright, against uvicorn on loopback.

Chromium comes from ``make browser-deps`` (apt), never from ``playwright install``.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import torch
import trimesh
import uvicorn
from PIL import Image
from playwright.sync_api import sync_playwright
from test_app import studio_photo
from test_generate import tiny_runs  # noqa: F401  (the shared tiny store + decoder + DiT fixture)

from img2sdf.app import create_app
from img2sdf.generate.pipeline import ImageToShape

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 60_000  # bound on every browser wait; the tiny model answers in a few seconds


@pytest.fixture
def live_server(tiny_runs, tmp_path):  # noqa: F811
    """The demo on 127.0.0.1 at a free port (the socket is bound here, so no port race); stopped after."""
    torch.set_num_threads(1)
    app = create_app(ImageToShape.load(tiny_runs["dit"]), tmp_path / "results", max_results=4)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing; run `make browser-deps` (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=WAIT_MS)
        try:
            yield b
        finally:
            b.close()


def test_upload_generate_preview_and_download_in_chromium(live_server, browser, tiny_runs, tmp_path):  # noqa: F811
    photo = tmp_path / "torus.jpg"
    photo.write_bytes(studio_photo(tiny_runs, 5))
    page = browser.new_page(viewport={"width": 1100, "height": 1000}, accept_downloads=True)
    page.set_default_timeout(WAIT_MS)
    page.goto(live_server)
    page.wait_for_selector("#resolution option", state="attached")  # /api/info answered
    assert page.is_disabled("#generate")

    # Drag and drop: the page takes dropped files; more than 8 are refused before any upload.
    drop = """n => { const dt = new DataTransfer();
        for (let k = 0; k < n; k++) dt.items.add(new File(['x'], `v${k}.png`, {type: 'image/png'}));
        return dt; }"""
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": page.evaluate_handle(drop, 9)})
    assert page.locator("#chosen img").count() == 9 and page.is_disabled("#generate")
    assert page.inner_text("#error") == "Choose at most 8 images (9 chosen)."
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": page.evaluate_handle(drop, 2)})
    assert page.inner_text("#status") == "2 images ready." and page.is_enabled("#generate")
    assert page.is_hidden("#error")

    page.set_input_files("#images", str(photo))
    page.fill("#steps", "10")
    assert page.get_attribute("#samples", "placeholder") == "16 (default)"
    page.fill("#samples", "3")
    page.select_option("#resolution", "32")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#preview').naturalWidth > 0")
    assert page.is_hidden("#error") and page.is_visible("#result")
    assert page.eval_on_selector("#preview", "img => img.naturalWidth / img.naturalHeight") == 4
    assert page.locator("#neighbours tbody tr").count() == 5
    assert page.inner_text("#status").startswith("Done in")
    assert "10 steps, 3 samples, 32³" in page.inner_text("#mesh-stats")  # the form reached the server

    with page.expect_download() as download:
        page.click("#download-glb")
    glb = tmp_path / download.value.suggested_filename
    download.value.save_as(glb)
    mesh = trimesh.load(glb, force="mesh")
    assert glb.suffix == ".glb" and mesh.is_watertight and len(mesh.faces) > 100
    page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
    shot = Image.open(tmp_path / "demo.png").convert("L")
    assert shot.size[0] == 1100 and shot.getextrema()[1] - shot.getextrema()[0] > 100  # not a blank page

    # A bad upload: the server's one-line message is shown on the page.
    (tmp_path / "notes.png").write_text("not a picture")
    page.set_input_files("#images", str(tmp_path / "notes.png"))
    page.click("#generate")
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error").startswith("notes.png: not an image PIL can read")
    assert page.is_hidden("#result")
    page.screenshot(path=str(tmp_path / "demo-error.png"))
    page.close()

