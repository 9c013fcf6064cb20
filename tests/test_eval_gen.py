"""Cosine-ranking diagnostic (paper §1.2 ii) and the held-out generation evaluation (eval-gen)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from test_generate import tiny_runs  # noqa: F401  (the shared tiny store + decoder + DiT fixture)

from img2sdf.cli.main import main
from img2sdf.eval.diagnostics import collapse_stats, recall_stats
from img2sdf.generate.neighbours import cosine_matrix, top_k


def test_cosine_ranking_recall_and_collapse():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(20, 64))
    assert np.allclose(np.diag(cosine_matrix(train, train)), 1.0)
    # predictions = true latents + small noise: recall 1, cos ≈ 1, a clear margin to the runner-up
    pred = train[:10] + 0.05 * rng.normal(size=(10, 64))
    rows, cos = top_k(pred, train, k=5)
    assert rows.shape == (10, 5) and np.all(np.diff(cos, axis=1) <= 0)
    assert np.array_equal(rows[:, 0], np.arange(10))
    stats = recall_stats(pred, train, np.arange(10))
    assert stats["recall_top1"] == 1.0 and stats["cos_true_mean"] > 0.99 and stats["margin_mean"] > 0.5
    # a prediction pointing at the training centroid (§3.3's collapse) is not recalled
    centroid = np.repeat(train.mean(0, keepdims=True) + train[:1] * 0.01, 10, axis=0)
    assert recall_stats(centroid, train, np.arange(10))["recall_top1"] <= 0.1
    # collapse: every prediction lands on the same 3 shapes vs. predictions spread over all shapes
    attractor = collapse_stats(np.array([3, 7, 3, 11, 7, 3, 11, 3, 7, 3]), n_train=20)
    spread = collapse_stats(np.arange(10), n_train=20)
    assert attractor["top3_share"] == 1.0 and attractor["distinct_top1"] == 3
    assert attractor["most_common"][0] == [3, 5]
    assert spread["top3_share"] == 0.3 and spread["distinct_fraction"] == 1.0


def test_eval_gen_photo_and_known_pose_protocols(tiny_runs, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "eval"
    rc = main(["eval-gen", "--model", str(tiny_runs["dit"]), "--out", str(out), "--resolution", "32",
               "--points", "2000", "--steps", "10", "--reconstruct-steps", "60", "--no-progress",
               "--device", "cpu"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"]["headline"] == "photo"
    for protocol in ("photo", "known_pose"):
        for split, n_shapes in (("test", 2), ("ood", 1)):
            assert set(metrics[protocol][split]) == {"1", "4"}
            for views in ("1", "4"):
                res = metrics[protocol][split][views]
                for method in ("generated", "guarded", "retrieval", "reconstruct", "sphere"):
                    row = res[method]
                    assert row["n"] == n_shapes and math.isfinite(row["chamfer_l1"]), (protocol, method)
                    assert 0.0 <= row["fscore_1pct"] <= 1.0 and 0.0 <= row["iou"] <= 1.0
                # the ceiling really fits its shapes: no failure, closer than the fixed sphere, small on test
                assert res["reconstruct"]["n_failed"] == 0
                assert res["reconstruct"]["chamfer_l1"] < res["sphere"]["chamfer_l1"]
                assert split == "ood" or res["reconstruct"]["chamfer_l1"] < 0.08
                assert res["sphere"]["worse_than_sphere"] == 0.0  # strictly worse than itself: never
                d = res["generated_minus_retrieval"]
                assert d["lo"] <= d["mean"] <= d["hi"] and d["n"] == n_shapes
                assert set(res["per_category"]) == ({"sphere", "box"} if split == "test" else {"cylinder"})
            # reconstruct does not depend on the views or the protocol
            same = metrics["photo"][split]["4"]["reconstruct"]
            assert metrics[protocol][split]["1"]["reconstruct"] == same
        # generation from 4 views finds the test shapes' surfaces (a DiT ignoring its input would not)
        assert metrics[protocol]["test"]["4"]["generated"]["fscore_1pct"] > 0.0
    protocol = metrics["protocol"]
    assert (protocol["n_points"], protocol["mesh_resolution"], protocol["n_train_shapes"]) == (2000, 32, 6)
    assert protocol["dit_training_views"] == "photo"
    # the DiT recalls its own training shapes: from their renders, and from new photos through load_view
    assert metrics["diagnostics"]["known_pose"]["recall"]["recall_top1"] == 1.0
    # (chance is 1/6; the two spheres differ only in size, which a re-framed photo cannot show)
    assert metrics["diagnostics"]["photo"]["recall"]["recall_top1"] >= 3 / 6
    # retrieval's own identity check: a training render's nearest training views are its own (the two
    # spheres, alike once framed, may swap), so the encoder can tell these shapes apart
    assert metrics["diagnostics"]["known_pose"]["recall"]["retrieval_top1"] >= 5 / 6
    assert 0.0 <= metrics["diagnostics"]["photo"]["recall"]["retrieval_top1"] <= 1.0
    # the photo inputs are real files, one per held-out shape and view, read back by load_view
    photos = json.loads((out / "photos" / "photos.json").read_text())
    held_out = {"obj_0006", "obj_0007", "obj_0008"}
    assert all(len(photos[k]) == 4 for k in held_out)  # 4 views of each held-out shape
    assert {k for k, v in photos.items() if len(v) == 1} == {f"obj_{i:04d}" for i in range(6)}  # recall
    assert all((tmp_path / "eval" / "photos").joinpath(*Path(p["file"]).parts[-2:]).is_file()
               for v in photos.values() for p in v)
    shapes = json.loads((out / "shapes.json").read_text())
    assert len(shapes) == 2 * (2 + 1) * 2
    page = (out / "report.html").read_text()
    assert "generated" in page and "retrieval" in page and page.count("<img") >= 2
    assert "<td>fscore_thresholds.fscore_1pct</td>" in page  # the protocol as a readable table
    assert "bootstrap" in page and "Per category" in page
    assert "report.html" in printed and "generated − retrieval" in printed


def test_a_failed_decode_raises_the_chamfer_mean(tiny_runs):  # noqa: F811
    """A method that fails is scored as the box-filling cube, never left out of the mean."""
    from img2sdf.data.store import ShapeStore
    from img2sdf.eval.generation_eval import EvalGenConfig, _aggregate, _Meshes

    store = ShapeStore(tiny_runs["data"])
    meshes = _Meshes(None, store, EvalGenConfig(n_points=2000))
    good = meshes.score(store.load_mesh(6), 6)
    failed = meshes.score(None, 6)
    sphere = meshes.score(meshes.sphere, 6)
    assert failed["failed"] and not good["failed"] and good["chamfer_l1"] < 1e-3
    alone, with_failure = _aggregate([good], [sphere]), _aggregate([good, failed], [sphere, sphere])
    assert with_failure["chamfer_l1"] > alone["chamfer_l1"] + 0.1
    assert with_failure["n_failed"] == 1 and with_failure["worse_than_sphere"] == 0.5
    assert with_failure["fscore_1pct"] < alone["fscore_1pct"]


def test_study_subset_store_keeps_held_out_splits_and_balances_categories(tiny_runs, tmp_path):  # noqa: F811
    from img2sdf.data.store import ShapeStore
    from img2sdf.eval.study import subset_store

    source = ShapeStore(tiny_runs["data"])
    sub = subset_store(source, tmp_path / "n3", n_train=3, seed=1)
    shapes = sub.load_manifest().shapes
    train = [s for s in shapes if s.split == "train"]
    assert len(train) == 3 and len({s.category for s in train}) == 3  # one per category, round-robin
    assert [s.split for s in shapes if s.split in ("test", "ood")] == ["test", "test", "ood"]
    assert sum(s.split == "unused" for s in shapes) == 3
    for name in ("meshes", "shapes", "renders", "features"):  # the big store's files, linked, not copied
        assert (sub.root / name).resolve() == (source.root / name).resolve()
    assert sub.load_mesh(0).is_watertight


@pytest.mark.parametrize("flags", [["--samples", "0"], ["--samples", "65"]])
def test_eval_gen_refuses_a_sample_count_out_of_range(tmp_path, capsys, flags):
    rc = main(["eval-gen", "--model", str(tmp_path / "dit"), "--out", str(tmp_path / "eval"), *flags])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.endswith(f"samples: {flags[1]} is out of range; use 1 to 64")
    assert len(err.splitlines()) == 1 and not (tmp_path / "eval").exists()
