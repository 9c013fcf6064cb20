"""Diagnostic 5 (paper §3.6, Table 2): the geometry of a run's per-shape vectors.

For a matrix X [N, D] — the per-shape MLP weights of a fit-mlps run, or the latents of an auto-decoder run
(any family) — it reports the L2 norms, the pairwise cosines, the most central shapes (cosine to the
population mean), how much of the total variance the highest-variance coordinates hold (sorted per-dimension
variances, top 10 / 1,000 / 10,000 / 25,000, clipped to D), the same by principal components (eigenvalues of
the centred Gram matrix = squared singular values of the centred X), and near-constant dimensions
(std < 1e-4, §3.5's clamp). A thin warm-started shell (Table 2: mean cos 0.96, 0.2 % of the variance in the
top 10 dimensions) shows as a high mean cosine with variance spread over many dimensions.
"""

from __future__ import annotations

import numpy as np

TOP_DIMS = (10, 1_000, 10_000, 25_000)

# Table 2 (976 anchor-initialised MLPs) and §3.5 (the std < 1e-4 count, over 199 shapes)
PAPER_TABLE2 = {
    "n_shapes": 976,
    "params_per_shape": 54_785,
    "mean_l2_norm": 13.39,
    "std_l2_norm": 0.10,
    "mean_pairwise_cos": 0.9606,
    "min_pairwise_cos": 0.927,
    "max_pairwise_cos": 1.000,
    "central": "obj_0054 / 0055 / 0172: 0.9951 / 0.9951 / 0.9950",
    "variance_top_dims": {"10": 0.002, "1000": 0.112, "10000": 0.554, "25000": 0.847},
    "dims_std_below": "124 (of 199 shapes, §3.5)",
}


def weight_stats(matrix, obj_idx: list[int] | None = None, top_dims=TOP_DIMS, n_central: int = 5,
                 small_std: float = 1e-4) -> dict:
    """Table 2's statistics of ``matrix`` [N, D] (row i ↔ ``obj_idx[i]``, default i)."""
    x = np.asarray(matrix, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need a matrix of at least 2 rows, got shape {x.shape}")
    n, d = x.shape
    obj_idx = list(range(n)) if obj_idx is None else [int(i) for i in obj_idx]
    norms = np.linalg.norm(x, axis=1)
    unit = x / np.maximum(norms[:, None], 1e-12)
    cos = unit @ unit.T
    off = cos[~np.eye(n, dtype=bool)]
    mean = x.mean(0)
    cos_mean = unit @ (mean / max(np.linalg.norm(mean), 1e-12))
    central = np.argsort(-cos_mean, kind="stable")[:n_central]

    var = x.var(0)  # per-dimension variance over shapes
    total = var.sum()
    ranked = np.cumsum(np.sort(var)[::-1])
    top = {str(k): float(ranked[min(k, d) - 1] / total) if total > 0 else 0.0 for k in top_dims}
    centred = x - mean
    eig = np.clip(np.linalg.eigvalsh(centred @ centred.T)[::-1], 0.0, None)  # = singular values², desc
    ranked_pc = np.cumsum(eig)
    pcs = sorted({1, min(10, n - 1), n - 1})
    top_pc = {str(k): float(ranked_pc[k - 1] / ranked_pc[-1]) if ranked_pc[-1] > 0 else 0.0 for k in pcs}
    std = np.sqrt(var)
    return {
        "n_shapes": n,
        "params_per_shape": d,
        "mean_l2_norm": float(norms.mean()),
        "std_l2_norm": float(norms.std()),
        "mean_pairwise_cos": float(off.mean()),
        "min_pairwise_cos": float(off.min()),
        "max_pairwise_cos": float(off.max()),
        "central": [{"obj_idx": obj_idx[r], "cos_to_mean": float(cos_mean[r])} for r in central],
        "variance_top_dims": top,
        "variance_top_pcs": top_pc,
        "dims_std_below": int((std < small_std).sum()),
        "small_std_threshold": small_std,
        "median_dim_std": float(np.median(std)),
        "protocol": "rows = shapes; norms and cosines over full vectors (cosines off the diagonal); "
                    "variances per dimension over shapes (ddof 0), sorted; principal components from the "
                    "centred matrix's squared singular values; std ddof 0",
    }


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def weights_markdown(stats: dict, source: str) -> str:
    """Table 2 as Markdown: ours beside the paper's."""
    p = PAPER_TABLE2
    central = " / ".join(f"obj_{c['obj_idx']:04d}" for c in stats["central"][:3])
    central_cos = " / ".join(f"{c['cos_to_mean']:.4f}" for c in stats["central"][:3])
    rows = [
        ("shapes × parameters", f"{stats['n_shapes']} × {stats['params_per_shape']:,}",
         f"{p['n_shapes']} × {p['params_per_shape']:,}"),
        ("Mean L2 norm of weight vectors", f"{stats['mean_l2_norm']:.2f}", f"{p['mean_l2_norm']:.2f}"),
        ("Std of L2 norm", f"{stats['std_l2_norm']:.3f} "
         f"({_pct(stats['std_l2_norm'] / stats['mean_l2_norm'])} of mean)", "0.10 (0.7 % of mean)"),
        ("Mean pairwise cosine similarity", f"{stats['mean_pairwise_cos']:.4f}",
         f"{p['mean_pairwise_cos']:.4f}"),
        ("Min / max pairwise cosine", f"{stats['min_pairwise_cos']:.3f} / {stats['max_pairwise_cos']:.3f}",
         f"{p['min_pairwise_cos']:.3f} / {p['max_pairwise_cos']:.3f}"),
        ("Cos-to-population-mean, most central 3", f"{central}: {central_cos}", p["central"]),
    ]
    for k, v in stats["variance_top_dims"].items():
        paper = p["variance_top_dims"].get(k)
        rows.append((f"Variance captured by top {int(k):,} dims", _pct(v), _pct(paper) if paper else "—"))
    for k, v in stats["variance_top_pcs"].items():
        rows.append((f"Variance captured by top {int(k):,} principal components", _pct(v), "—"))
    rows.append((f"Dimensions with std < {stats['small_std_threshold']:g}", f"{stats['dims_std_below']:,}",
                 p["dims_std_below"]))
    rows.append(("Median per-dimension std", f"{stats['median_dim_std']:.2g}", "≈ 0.0008 (§3.6 text)"))
    lines = [f"# Weight-distribution statistics (paper Table 2) — {source}", "",
             "| statistic | ours | paper (Table 2) |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines += ["", "Most central shapes (cosine to the population mean): "
              + ", ".join(f"obj_{c['obj_idx']:04d} {c['cos_to_mean']:.4f}" for c in stats["central"]), ""]
    return "\n".join(lines)


RUN_MATRICES = ("weights.safetensors", "latents.safetensors")  # fit-mlps weights, auto-decoder latents


def load_run_matrix(path, key: str | None = None) -> tuple[np.ndarray, list[int], str]:
    """(matrix [N, D] float32, obj_idx per row, "file:key") of a run folder — its weights.safetensors or
    latents.safetensors — or of a .safetensors file; ``key`` picks the tensor (default: the only 2-D one)."""
    from pathlib import Path

    from safetensors import safe_open

    from ..errors import UserError
    from ..io import read_json

    path = Path(path)
    if path.is_dir():
        found = [path / name for name in RUN_MATRICES if (path / name).is_file()]
        if not found:
            hint = (f"; merge its shards with `img2sdf fit-mlps {path} --merge`"
                    if (path / "shards").is_dir() else "")
            raise UserError(f"{path}: no {' or '.join(RUN_MATRICES)} (not a finished run){hint}")
        file = found[0]
    elif path.is_file() and path.suffix == ".safetensors":
        file = path
    else:
        raise UserError(f"{path}: expected a run folder or a .safetensors file")
    with safe_open(file, "np") as f:
        meta = f.metadata() or {}
        names = [key] if key else [k for k in f.keys() if len(f.get_slice(k).get_shape()) == 2]
        if len(names) != 1 or names[0] not in f.keys():
            raise UserError(f"{file}: pass --key, one of {sorted(f.keys())}")
        matrix = f.get_tensor(names[0]).astype(np.float32)
    if matrix.ndim != 2:
        raise UserError(f"{file}:{names[0]} has shape {matrix.shape}; need [shapes, dims]")
    if "obj_idx" in meta:
        obj_idx = [int(i) for i in meta["obj_idx"].split(",")]
    elif (file.parent / "config.json").is_file() and "obj_idx" in read_json(file.parent / "config.json"):
        obj_idx = [int(i) for i in read_json(file.parent / "config.json")["obj_idx"]]
    else:
        obj_idx = list(range(len(matrix)))
    if len(obj_idx) != len(matrix):
        obj_idx = list(range(len(matrix)))
    return matrix, obj_idx, f"{file.name}:{names[0]}"
