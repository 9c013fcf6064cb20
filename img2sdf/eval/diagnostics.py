"""The cosine-ranking diagnostic (paper §1.2 ii, §3.3, §6.2): rank a predicted latent against every
training latent by cosine similarity.

It separates three behaviours: *recall* (a training shape's prediction has its own latent as top-1, with a
margin to the runner-up), *collapse* (predictions for different inputs keep landing on the same few training
shapes, §3.3's "4-shape attractor"), and *generalisation* (held-out inputs spread over many neighbours).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..generate.neighbours import cosine_matrix


def recall_stats(pred: np.ndarray, train: np.ndarray, true_rows: np.ndarray) -> dict:
    """For predictions of training shapes: fraction whose top-1 is the true latent, cos(pred, true), and the
    margin between the top-1 and the second-nearest cosine (§6.2 reports > 0.4 at 20 shapes)."""
    cos = cosine_matrix(pred, train)
    true_rows = np.asarray(true_rows)
    ranked = np.sort(cos, axis=1)[:, ::-1]
    return {
        "n": int(len(true_rows)),
        "recall_top1": float(np.mean(cos.argmax(axis=1) == true_rows)),
        "cos_true_mean": float(np.mean(cos[np.arange(len(true_rows)), true_rows])),
        "margin_mean": float(np.mean(ranked[:, 0] - ranked[:, 1])) if cos.shape[1] > 1 else 0.0,
    }


def collapse_stats(top1_rows: np.ndarray, n_train: int, few: int = 3) -> dict:
    """How concentrated the top-1 neighbours of many predictions are: ``top_share`` is the fraction of
    predictions whose top-1 is one of the ``few`` most frequent training shapes (1.0 = a few-shape attractor;
    for distinct inputs spread evenly it is about few / min(M, N))."""
    top1_rows = np.asarray(top1_rows).ravel()
    counts = Counter(top1_rows.tolist())
    m = len(top1_rows)
    return {
        "n_predictions": m,
        "n_train": int(n_train),
        "distinct_top1": len(counts),
        "distinct_fraction": len(counts) / max(min(m, n_train), 1),
        f"top{few}_share": sum(c for _, c in counts.most_common(few)) / max(m, 1),
        "most_common": [[int(r), int(c)] for r, c in counts.most_common(few)],
    }
