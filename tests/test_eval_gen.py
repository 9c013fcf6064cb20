"""Cosine-ranking diagnostic (paper §1.2 ii) and the held-out generation evaluation (eval-gen)."""

import numpy as np

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
