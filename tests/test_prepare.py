"""`img2sdf prepare` end to end: bad input recorded, manifest round trip, resume, kill -9, shards."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import trimesh

from img2sdf.cli.main import main
from img2sdf.data import analytic
from img2sdf.data.prepare import PrepareConfig, ShapeTask, _run_pool, process_shape
from img2sdf.data.sources import FolderSource
from img2sdf.data.store import Manifest, ShapeStore
from img2sdf.data.watertight import WatertightConfig
from img2sdf.io import read_json

FAST = ["--points", "3000", "--grid", "64", "--workers", "1", "--views", "2", "--resolution", "32"]


def _good_folder(root):
    (root / "ball").mkdir(parents=True)
    (root / "ring").mkdir()
    analytic.sphere_mesh(0.5, 3).export(root / "ball" / "sphere.obj")
    analytic.box_mesh([0.3, 0.2, 0.4]).export(root / "ball" / "box.stl")
    analytic.torus_mesh(0.6, 0.2, 48, 16).export(root / "ring" / "torus.ply")
    union = trimesh.Scene([analytic.sphere_mesh(0.4, 3), analytic.torus_mesh(0.5, 0.1, 48, 16)])
    union.export(root / "ring" / "overlap.glb")


def _bad_folder(root):
    (root / "bad").mkdir(parents=True)
    (root / "bad" / "empty.obj").write_bytes(b"")
    (root / "bad" / "junk.ply").write_bytes(b"not a mesh at all\n")
    (root / "bad" / "notes.txt").write_text("an unsupported extension")
    v = analytic.sphere_mesh(0.5, 2).vertices.copy()
    v[7] = np.nan
    trimesh.Trimesh(v, analytic.sphere_mesh(0.5, 2).faces, process=False).export(root / "bad" / "nan.obj")
    flat = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], [[0, 1, 2], [1, 3, 2]])
    flat.export(root / "bad" / "flat.off")
    analytic.sphere_mesh(0.5, 5).export(root / "bad" / "huge.stl")  # 20480 faces > --max-faces 10000
    return {
        "bad/empty.obj": "empty file", "bad/junk.ply": "not a readable mesh",
        "bad/notes.txt": "unsupported extension", "bad/nan.obj": "NaN/Inf", "bad/flat.off": "planar",
        "bad/huge.stl": "20480 faces > 10000: refused",
    }


def _prepare(out, inp, *extra):
    return main(["prepare", str(out), "--source", "folder", "--input", str(inp), "--max-faces", "10000",
                 *FAST, *extra])


def test_end_to_end_with_every_bad_input(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    _good_folder(inp)
    expected = _bad_folder(inp)
    assert _prepare(out, inp) == 0  # failures are recorded, not fatal
    store = ShapeStore(out)
    manifest = store.load_manifest()
    assert Manifest.from_json(read_json(store.manifest_path)).to_json() == read_json(store.manifest_path)
    by_uid = {s.uid: s for s in manifest.shapes}
    assert manifest.by_uid() == {s.uid: s.obj_idx for s in manifest.shapes}
    assert [s.obj_idx for s in manifest.shapes] == list(range(10))
    log = (out / "prepare.log").read_text()
    for uid, reason in expected.items():
        entry = by_uid[uid]
        assert entry.status == "failed" and reason in entry.reason and entry.reason.startswith("watertight: ")
        assert f"{uid}: failed: watertight: " in log
    for entry in manifest.select(status="ok"):
        assert set(entry.timings) == {"watertight", "sdf", "render"}
        mesh = store.load_mesh(entry.obj_idx)
        assert mesh.is_watertight and mesh.volume > 0
        assert np.linalg.norm(mesh.vertices, axis=1).max() == pytest.approx(1.0, abs=0.02)
        points, sdf = store.load_sdf(entry.obj_idx)
        assert points.shape == (3000, 3) and sdf.shape == (3000,) and 0.02 < (sdf < 0).mean() < 0.7
        assert (store.render_dir(entry.obj_idx) / "cameras.json").is_file()
        assert set(entry.transform) == {"center", "scale"}
    assert by_uid["ring/overlap.glb"].extra["watertight"]["method"] == "remeshed"
    assert by_uid["ball/sphere.obj"].extra["watertight"]["method"] == "kept"
    assert _prepare(out, inp, "--strict") == 1  # all shapes skipped, but failures exist
    assert main(["prepare", str(out), "--source", "synthetic", "--n", "3"]) == 2  # another dataset


def test_exit_status_when_nothing_succeeds(tmp_path):
    _bad_folder(tmp_path / "in")
    assert _prepare(tmp_path / "out", tmp_path / "in", "--stages", "watertight") == 1


def test_a_later_stage_without_its_mesh_waits_instead_of_failing(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    _good_folder(inp)
    assert _prepare(out, inp, "--stages", "sdf") == 1  # nothing could run
    shapes = ShapeStore(out).load_manifest().shapes
    assert {(s.status, s.reason) for s in shapes} == {("pending", "sdf: needs the watertight stage first")}
    assert _prepare(out, inp, "--stages", "watertight,sdf") == 0
    assert {(s.status, s.reason) for s in ShapeStore(out).load_manifest().shapes} == {("ok", "")}


def test_resume_recomputes_only_what_an_interruption_left_unfinished(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    _good_folder(inp)
    assert _prepare(out, inp, "--stages", "watertight,sdf") == 0
    store = ShapeStore(out)
    before = {i: (out / "status" / f"obj_{i:04d}.json").read_text() for i in range(4)}
    sdf1 = store.load_sdf(1)[1]
    store.sdf_path(1).unlink()  # killed before the write finished: only a temporary is left
    (out / "shapes" / ".obj_0001.npz.tmp-dead.npz").write_bytes(b"half")
    status2 = json.loads(before[2])  # killed after the npz write, before the status update
    del status2["timings"]["sdf"]
    (out / "status" / "obj_0002.json").write_text(json.dumps(status2))
    assert _prepare(out, inp, "--stages", "watertight,sdf") == 0
    after = {i: (out / "status" / f"obj_{i:04d}.json").read_text() for i in range(4)}
    assert after[0] == before[0] and after[3] == before[3]  # untouched
    assert np.array_equal(store.load_sdf(1)[1], sdf1)  # recomputed identically (seed from the uid)
    assert "sdf" in json.loads(after[2])["timings"]
    assert not list(out.rglob("*.tmp-*"))


def test_kill_9_mid_run_leaves_nothing_that_looks_finished(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    _good_folder(inp)
    for i in range(4):
        analytic.torus_mesh(0.5 + 0.05 * i, 0.2, 64, 24).export(inp / "ring" / f"t{i}.obj")
    cmd = [sys.executable, "-m", "img2sdf.cli.main", "prepare", str(out), "--source", "folder", "--input",
           str(inp), "--stages", "watertight,sdf", "--points", "150000", "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not list(out.glob("status/obj_*.json")) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the main process and its workers, mid-run
    finally:
        proc.wait()
    store = ShapeStore(out)
    done_before = 0
    for status in out.glob("status/obj_*.json"):
        entry = read_json(status)
        if "sdf" in entry["timings"]:
            done_before += 1
            assert store.load_sdf(entry["obj_idx"])[0].shape == (150000, 3)
    assert done_before < 8, "the run finished before it could be killed; the test proves nothing"
    assert _prepare(out, inp, "--stages", "watertight,sdf") == 0
    manifest = store.load_manifest()
    assert all(s.status == "ok" for s in manifest.shapes)
    assert not list(out.rglob("*.tmp-*"))


def test_shards_assemble_one_complete_manifest(tmp_path):
    inp = tmp_path / "in"
    _good_folder(inp)
    sharded, whole = tmp_path / "sharded", tmp_path / "whole"
    assert _prepare(sharded, inp, "--stages", "watertight,sdf", "--shard", "1/2") == 0
    half = ShapeStore(sharded).load_manifest()
    assert [s.status for s in half.shapes] == ["pending", "ok", "pending", "ok"]  # obj_idx % 2 == 1
    assert _prepare(sharded, inp, "--stages", "watertight,sdf", "--shard", "0/2", "--workers", "2") == 0
    assert _prepare(whole, inp, "--stages", "watertight,sdf") == 0
    a, b = ShapeStore(sharded), ShapeStore(whole)
    assert [s.status for s in a.load_manifest().shapes] == ["ok"] * 4
    assert [s.uid for s in a.load_manifest().shapes] == [s.uid for s in b.load_manifest().shapes]
    for i in range(4):
        assert np.array_equal(a.load_sdf(i)[1], b.load_sdf(i)[1])
    assert main(["prepare", str(whole), "--source", "folder", "--input", str(inp), "--shard", "2/2"]) == 2


def _die_on_shape_1(task):
    """Stands in for a shape that segfaults its worker (module level: spawned workers import it)."""
    if task.obj_idx == 1:
        os._exit(11)
    return process_shape(task)


def test_a_shape_that_kills_its_worker_is_failed_and_the_rest_finish(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    _good_folder(inp)
    store = ShapeStore(out)
    cfg = PrepareConfig(stages=("watertight",), watertight=WatertightConfig(resolution=48))
    records = FolderSource(inp).records()
    tasks = [ShapeTask(str(out), i, rec, cfg) for i, rec in enumerate(records)]
    reported = []
    _run_pool(store, tasks, 2, reported.append, work=_die_on_shape_1)
    assert sorted(e.obj_idx for e in reported) == [0, 1, 2, 3]
    assert [e.status for e in sorted(reported, key=lambda e: e.obj_idx)] == ["ok", "failed", "ok", "ok"]
    assert "worker process died twice" in read_json(out / "status" / "obj_0001.json")["reason"]


def test_four_shards_with_one_killed_and_rerun_give_every_shape_once(tmp_path):
    """A synthetic prepare in four shard processes; shard 1 is killed with SIGKILL after its first shape
    and rerun. The merged manifest holds every shape exactly once, all ok, and no half-written file."""
    out, n = tmp_path / "out", 16
    args = ["prepare", str(out), "--source", "synthetic", "--n", str(n), "--stages", "watertight,sdf",
            "--points", "120000", "--workers", "1"]
    cmd = [sys.executable, "-m", "img2sdf.cli.main", *args]
    procs = {i: subprocess.Popen([*cmd, "--shard", f"{i}/4"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True) for i in range(4)}
    victim = procs[1]
    try:
        deadline = time.time() + 180
        mine = [out / "status" / f"obj_{k:04d}.json" for k in range(1, 2 * n, 4)]  # (the catalogue adds
        # held-out test and ood shapes to the n training ones)
        while not any(p.is_file() for p in mine) and time.time() < deadline and victim.poll() is None:
            time.sleep(0.02)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        done_before = sum("sdf" in read_json(p)["timings"] for p in mine if p.is_file())
        for i in (0, 2, 3):
            assert procs[i].wait(timeout=300) == 0
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    assert main([*args, "--shard", "1/4"]) == 0
    store = ShapeStore(out)
    shapes = store.load_manifest().shapes
    total = len(shapes)
    assert done_before < len(range(1, total, 4)), "shard 1 finished before it was killed: proves nothing"
    assert total >= n and [s.obj_idx for s in shapes] == list(range(total))
    assert len({s.uid for s in shapes}) == total
    assert all(s.status == "ok" and set(s.timings) == {"watertight", "sdf"} for s in shapes)
    assert not list(out.rglob("*.tmp-*"))
    for s in shapes:
        points, sdf = store.load_sdf(s.obj_idx)
        assert points.shape == (120000, 3) and sdf.shape == (120000,)
        assert store.load_mesh(s.obj_idx).is_watertight
    assert sorted(p.name for p in (out / "status").iterdir()) == [f"obj_{k:04d}.json" for k in range(total)]
