"""Shape sources: folder (scenes, hashed splits, overrides), Objaverse-LVIS on a local cache, synthetic."""

import gzip
import json
import urllib.error
import urllib.request

import numpy as np
import objaverse
import pytest
import trimesh

from img2sdf.data import analytic
from img2sdf.data.sources import (
    FolderSource,
    ObjaverseLVISSource,
    SyntheticSource,
    hash_split,
    load_mesh_file,
    load_shape,
)
from img2sdf.data.watertight import ShapeError
from img2sdf.errors import UserError


def test_folder_categories_splits_and_override(tmp_path):
    for i in range(40):
        (tmp_path / f"cat{i % 2}").mkdir(exist_ok=True)
        analytic.box_mesh(0.1 + 0.01 * i).export(tmp_path / f"cat{i % 2}" / f"m{i}.stl")
    analytic.box_mesh(0.2).export(tmp_path / "top.off")
    records = FolderSource(tmp_path, test_fraction=0.25).records()
    assert len(records) == 41 and records == FolderSource(tmp_path, test_fraction=0.25).records()
    assert {r.category for r in records} == {"cat0", "cat1", "_root"}
    assert all(r.split == hash_split(r.uid, 0.25) for r in records)
    assert 3 <= sum(r.split == "test" for r in records) <= 20
    (tmp_path / "splits.json").write_text(json.dumps({"cat1": "ood", "cat0/m0.stl": "test"}))
    records = {r.uid: r for r in FolderSource(tmp_path, test_fraction=0.25).records()}
    assert "splits.json" not in records
    assert all(r.split == "ood" for r in records.values() if r.category == "cat1")
    assert records["cat0/m0.stl"].split == "test"
    (tmp_path / "splits.json").write_text(json.dumps({"cat1": "validation"}))
    with pytest.raises(UserError, match="unknown split"):
        FolderSource(tmp_path)


def test_scene_is_flattened_with_node_transforms(tmp_path):
    scene = trimesh.Scene()
    scene.add_geometry(analytic.box_mesh(0.5))
    shift = trimesh.transformations.translation_matrix([3, 0, 0])
    scene.add_geometry(analytic.box_mesh(0.5), transform=shift)
    scene.export(tmp_path / "pair.glb")
    mesh = load_mesh_file(tmp_path / "pair.glb")
    assert len(mesh.faces) == 24
    assert np.allclose(mesh.bounds, [[-0.5, -0.5, -0.5], [3.5, 0.5, 0.5]])


@pytest.mark.parametrize("name, content, reason", [
    ("empty.obj", b"", "empty file"),
    ("junk.ply", b"this is not a ply file\n", "not a readable mesh"),
    ("notes.txt", b"hello", "unsupported extension"),
    ("lines.obj", b"v 0 0 0\nv 1 0 0\nl 1 2\n", "no triangles"),
])
def test_unreadable_files_raise_a_one_line_reason(tmp_path, name, content, reason):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ShapeError, match=reason) as err:
        load_mesh_file(tmp_path / name)
    assert "\n" not in str(err.value)


def _objaverse_cache(root, annotations, files):
    """The layout the objaverse package downloads into, built locally (no network in tests)."""
    base = root / "hf-objaverse-v1"
    base.mkdir(parents=True)
    with gzip.open(base / "lvis-annotations.json.gz", "wt") as f:
        json.dump(annotations, f)
    paths = {uid: f"glbs/000-001/{uid}.glb" for uids in annotations.values() for uid in uids}
    with gzip.open(base / "object-paths.json.gz", "wt") as f:
        json.dump(paths, f)
    for uid, mesh in files.items():
        (base / paths[uid]).parent.mkdir(parents=True, exist_ok=True)
        mesh.export(base / paths[uid])


@pytest.fixture
def offline(monkeypatch):
    """Restore the package's cache globals afterwards and make every download fail as offline."""
    monkeypatch.setattr(objaverse, "BASE_PATH", objaverse.BASE_PATH)
    monkeypatch.setattr(objaverse, "_VERSIONED_PATH", objaverse._VERSIONED_PATH)

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError(f"offline: {url}")

    monkeypatch.setattr(urllib.request, "urlretrieve", no_network)


def test_objaverse_lvis_through_the_package_on_a_local_cache(tmp_path, offline):
    annotations = {"mug": ["u1", "u2", "u3"], "chair": ["u4"], "lamp": ["u5"]}
    files = {"u1": analytic.sphere_mesh(0.5, 2), "u2": analytic.box_mesh(0.3), "u4": analytic.box_mesh(0.2)}
    _objaverse_cache(tmp_path, annotations, files)
    source = ObjaverseLVISSource(["mug", "chair"], per_category=2, download_dir=tmp_path, test_fraction=0.0)
    records = source.records()
    assert [r.category for r in records] == ["mug", "mug", "chair"]
    assert {r.uid for r in records} <= {"u1", "u2", "u3", "u4"} and all(r.split == "train" for r in records)
    fetched, failed = source.fetch(records)
    for rec in fetched:
        if rec.uid in files:
            assert len(load_shape(rec).faces) == len(files[rec.uid].faces)
        else:  # listed but not cached: the package tries to download it and fails offline
            assert "download failed" in failed[rec.uid] and "offline" in failed[rec.uid]
    cached = [r for r in records if r.uid in files]
    fetched, failed = source.fetch(cached)  # all cached: the one-call path
    assert not failed and all(r.source.endswith(f"{r.uid}.glb") for r in fetched)
    with pytest.raises(UserError, match="not LVIS categories: dragon"):
        ObjaverseLVISSource(["dragon"], download_dir=tmp_path).records()


def test_objaverse_offline_with_nothing_cached_is_one_clear_error(tmp_path, offline):
    with pytest.raises(UserError, match="cannot get the LVIS annotations .*offline.*--download-dir") as err:
        ObjaverseLVISSource(download_dir=tmp_path / "empty").records()
    assert "\n" not in str(err.value)


def test_synthetic_source_lists_train_test_and_ood_shapes():
    source = SyntheticSource(16)
    records = source.records()
    splits = [r.split for r in records]
    assert (splits.count("train"), splits.count("test"), splits.count("ood")) == (16, 2, 3)
    assert len({r.uid for r in records}) == len(records)
    mesh = load_shape(records[0])
    assert mesh.is_watertight and mesh.volume > 0
    assert [r.uid for r in SyntheticSource(16).records()] == [r.uid for r in records]


def test_prepare_from_objaverse_lvis_end_to_end(tmp_path, offline):
    from img2sdf.cli.main import main
    from img2sdf.data.store import ShapeStore

    annotations = {"mug": ["u1", "u2"], "chair": ["u4"]}
    _objaverse_cache(tmp_path / "cache", annotations, {"u1": analytic.sphere_mesh(0.5, 2)})
    out = tmp_path / "out"
    rc = main(["prepare", str(out), "--source", "objaverse-lvis", "--download-dir", str(tmp_path / "cache"),
               "--categories", "mug", "--stages", "watertight,sdf", "--points", "2000", "--workers", "1"])
    assert rc == 0
    shapes = {s.uid: s for s in ShapeStore(out).load_manifest().shapes}
    assert set(shapes) == {"u1", "u2"} and shapes["u1"].status == "ok" and shapes["u1"].category == "mug"
    assert shapes["u1"].source.endswith("u1.glb")
    assert shapes["u2"].status == "failed" and "download failed" in shapes["u2"].reason
