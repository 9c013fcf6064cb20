"""Cosine-ranking diagnostic (paper §1.2 ii) and the held-out generation evaluation (eval-gen)."""

import json
import math

import numpy as np
from test_generate import tiny_runs  # noqa: F401  (the shared tiny store + decoder + DiT fixture)

from img2sdf.cli.main import main
from img2sdf.eval.diagnostics import collapse_stats, cosine_matrix, recall_stats, top_k


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


def test_eval_gen_metrics_structure_and_report(tiny_runs, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "eval"
    rc = main(["eval-gen", "--model", str(tiny_runs["dit"]), "--out", str(out), "--resolution", "32",
               "--points", "2000", "--steps", "10", "--reconstruct-steps", "20", "--no-progress"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    metrics = json.loads((out / "metrics.json").read_text())
    for split, n_shapes in (("test", 2), ("ood", 1)):
        assert set(metrics[split]) == {"1", "4"}
        for views in ("1", "4"):
            assert set(metrics[split][views]) == {"generated", "retrieval", "reconstruct"}
            for method, row in metrics[split][views].items():
                assert {"chamfer_l1", "fscore_1pct", "iou"} <= set(row)
                assert row["n"] == n_shapes
                assert 0.0 <= row["fscore_1pct"] <= 1.0 and 0.0 <= row["iou"] <= 1.0
                assert row["n_failed"] == n_shapes or math.isfinite(row["chamfer_l1"]), (split, views, method)
        # reconstruct does not depend on the views
        assert metrics[split]["1"]["reconstruct"] == metrics[split]["4"]["reconstruct"]
    protocol = metrics["protocol"]
    assert (protocol["n_points"], protocol["mesh_resolution"], protocol["n_train_shapes"]) == (2000, 32, 6)
    # the DiT recalls its own training shapes from one view (the §6.2 behaviour at tiny scale)
    recall = metrics["diagnostics"]["recall"]
    assert recall["n"] == 6 and recall["recall_top1"] == 1.0
    collapse = metrics["diagnostics"]["collapse"]["test"]["4"]
    assert collapse["n_predictions"] == 2 and 1 <= collapse["distinct_top1"] <= 2
    shapes = json.loads((out / "shapes.json").read_text())
    assert len(shapes) == (2 + 1) * 2
    page = (out / "report.html").read_text()
    assert "generated" in page and "retrieval" in page and page.count("<img") >= 2
    assert "<td>fscore_thresholds.fscore_1pct</td>" in page  # the protocol as a readable table
    assert "report.html" in printed


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
