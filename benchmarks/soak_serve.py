"""Soak test of the web demo (`img2sdf serve`) over loopback: concurrency, hostile uploads, memory.

Starts the server as a subprocess on 127.0.0.1 (a free port), then
  1. 40 concurrent valid requests: every answer must be 200 or 503 (busy, with Retry-After), never another
     5xx and never a hang; every 200's preview and mesh are fetched afterwards;
  2. a hostile mix, 8 clients at a time, each retrying a 503 after its Retry-After (capped at 5 s):
     7,900² mostly white PNGs (RGB and RGBA, ~0.2 MB each, four at once), a
     3,000-frame GIF, truncated PNGs, 9-file posts, valid chunked bodies without Content-Length, chunked
     bodies over the cap, 50 MB bodies (one 50 MB part), a 170 MB Content-Length, clients that disconnect;
and prints JSON: status counts per kind, the server's VmHWM/VmRSS (idle, after phase 1, after phase 2 and
after a pause), and the result folders left (must be <= --max-results). Everything is bounded: a fixed
number of requests, a timeout on each, and no traffic leaves 127.0.0.1.

    python benchmarks/soak_serve.py --model runs/demo/dit
    python benchmarks/soak_serve.py --build-tiny /tmp/soak/runs   # the test suite's tiny DiT run
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

FAST = {"steps": "10", "resolution": "32"}
TIMEOUT = 300  # seconds per request: a hang fails the soak instead of stalling it
BOUNDARY = "soak-boundary"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory(pid: int) -> dict:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {k: round(int(status[k].split()[0]) / 2**20, 3) for k in ("VmHWM", "VmRSS")}  # GB


def multipart(files: list[tuple[str, bytes]], fields: dict | None = None) -> bytes:
    out = []
    for name, value in (fields or {}).items():
        out.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                   f"{value}\r\n".encode())
    for name, data in files:
        out.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="images"; filename="{name}"\r\n'
                   f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(out) + f"--{BOUNDARY}--\r\n".encode()


def post(port: int, body: bytes, chunked: bool = False, length: int | None = None,
         disconnect_after: float | None = None) -> tuple[int, dict | str]:
    """POST /api/generate; returns (status, JSON answer). -1: the server reset the connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    try:
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
            pieces = (body[k:k + 2**16] for k in range(0, len(body), 2**16))
            conn.request("POST", "/api/generate", body=pieces, headers=headers, encode_chunked=True)
        elif length is not None:  # announce a huge body, send only its first MB
            headers["Content-Length"] = str(length)
            conn.putrequest("POST", "/api/generate")
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders()
            conn.send(body[: 2**20])
        else:
            conn.request("POST", "/api/generate", body=body, headers=headers)
        if disconnect_after is not None:
            time.sleep(disconnect_after)
            conn.close()
            return 0, "disconnected"
        r = conn.getresponse()
        text = r.read().decode()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text
    except (ConnectionResetError, BrokenPipeError):
        return -1, "connection reset"
    finally:
        conn.close()


def get(port: int, url: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request("GET", url)
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def png(a: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", **kw)
    return buf.getvalue()


def inputs() -> dict[str, bytes]:
    """The test images, built in memory."""
    photo = np.full((300, 300, 3), 255, np.uint8)
    photo[80:220, 100:200] = (200, 60, 40)
    huge = np.full((7900, 7900, 3), 255, np.uint8)
    huge[3000:5200, 2500:5800] = (200, 60, 40)
    huge_rgba = np.zeros((7900, 7900, 4), np.uint8)
    huge_rgba[3000:5200, 2500:5800] = (200, 60, 40, 255)
    frames = [Image.fromarray(np.full((64, 64, 3), k % 256, np.uint8)) for k in range(3000)]
    frames[0] = Image.fromarray(np.pad(np.full((40, 40, 3), 220, np.uint8), ((12, 12), (12, 12), (0, 0))))
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=10)
    return {"photo": png(photo), "huge": png(huge, compress_level=9),
            "huge_rgba": png(huge_rgba, compress_level=9), "gif": gif.getvalue(),
            "truncated": png(huge, compress_level=1)[: 2**19]}


def soak(model: Path, max_results: int, concurrent: int) -> dict:
    port = free_port()
    results = Path(tempfile.mkdtemp(prefix="soak-results-"))
    cmd = [sys.executable, "-m", "img2sdf.cli.main", "serve", "--model", str(model), "--port", str(port),
           "--results", str(results), "--max-results", str(max_results)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    report: dict = {"load_before": os.getloadavg()}
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if get(port, "/api/info") == 200:
                    break
            except OSError:
                time.sleep(0.3)
        data = inputs()
        report["memory_idle"] = memory(server.pid)

        # 1. concurrent valid requests
        body = multipart([("photo.png", data["photo"])], FAST)
        t = time.perf_counter()
        with ThreadPoolExecutor(concurrent) as pool:
            answers = list(pool.map(lambda _: post(port, body), range(concurrent)))
        report["concurrent"] = {
            "requests": concurrent, "seconds": round(time.perf_counter() - t, 1),
            "status": dict(Counter(s for s, _ in answers)),
            "busy_messages": sorted({a["error"] for s, a in answers if s == 503})[:3],
        }
        ok = [a for s, a in answers if s == 200]
        fetched = [get(port, a["preview"]) for a in ok[-max_results:]]
        fetched += [get(port, a["downloads"]["glb"]) for a in ok[-max_results:]]
        report["concurrent"]["results_fetched"] = dict(Counter(fetched))
        report["memory_after_concurrent"] = memory(server.pid)

        # 2. the hostile mix
        fifty = multipart([("fifty.png", b"\0" * 50 * 2**20)])

        def send(files, **kw):
            return lambda: post(port, multipart(files, FAST), **kw)

        def patiently(job):  # a polite client: retries a 503 after Retry-After (capped), at most 20 times
            kind, call = job
            for _ in range(20):
                status, answer = call()
                if status != 503:
                    break
                time.sleep(min(answer["retry_after"], 5))
            return kind, (status, answer)

        jobs = (
            [("huge_png", send([("huge.png", data["huge"])]))] * 4
            + [("huge_rgba_png", send([("huge_rgba.png", data["huge_rgba"])]))] * 2
            + [("gif_3000_frames", send([("many.gif", data["gif"])]))] * 2
            + [("truncated", send([("cut.png", data["truncated"])]))] * 2
            + [("nine_files", send([(f"{k}.png", data["photo"]) for k in range(9)]))] * 2
            + [("chunked_valid", send([("photo.png", data["photo"])], chunked=True))] * 2
            + [("chunked_over_cap", send([("big.png", b"\0" * 170 * 2**20)], chunked=True))] * 2
            + [("body_50mb", lambda: post(port, fifty))] * 3
            + [("length_170mb", lambda: post(port, fifty, length=170 * 2**20))] * 2
            + [("disconnect", send([("photo.png", data["photo"])], disconnect_after=0.5))] * 3
        )
        t = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            outcome = list(pool.map(patiently, jobs))
        mix = {}
        for kind, (status, answer) in outcome:
            entry = mix.setdefault(kind, {"status": Counter(), "errors": set()})
            entry["status"][status] += 1
            if isinstance(answer, dict) and "error" in answer:
                entry["errors"].add(answer["error"][:100])
            elif isinstance(answer, str):
                entry["errors"].add(answer[:100])
        report["mix"] = {k: {"status": dict(v["status"]), "errors": sorted(v["errors"])}
                         for k, v in mix.items()}
        report["mix_seconds"] = round(time.perf_counter() - t, 1)
        report["memory_after_mix"] = memory(server.pid)
        time.sleep(10)
        report["memory_after_pause"] = memory(server.pid)
        folders = [p for p in results.iterdir() if p.is_dir()]
        report["result_folders"] = len(folders)
        report["max_results"] = max_results
        report["server_alive"] = server.poll() is None
        report["load_after"] = os.getloadavg()
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    report["server_stderr_tail"] = server.stderr.read().decode()[-500:]
    statuses = [s for s, _ in answers] + [s for _, (s, _) in outcome]
    report["no_5xx_other_than_503"] = all(not 500 <= s < 600 or s == 503 for s in statuses)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="DiT run folder (default runs/demo/dit if it exists)")
    parser.add_argument("--build-tiny", type=Path, help="build the test suite's tiny DiT run here and use it")
    parser.add_argument("--max-results", type=int, default=8)
    parser.add_argument("--concurrent", type=int, default=40)
    args = parser.parse_args()
    model = args.model
    if args.build_tiny:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from test_generate import build_tiny_runs

        model = build_tiny_runs(args.build_tiny)["dit"]
    model = model or Path("runs/demo/dit")
    if not (model / "config.json").is_file():
        parser.error(f"{model}: no DiT run; pass --model or --build-tiny DIR")
    print(json.dumps(soak(model, args.max_results, args.concurrent), indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
