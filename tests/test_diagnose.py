"""``img2sdf diagnose weights`` (paper §3.6, Table 2) on constructed vectors whose statistics are known."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from img2sdf.cli.main import main
from img2sdf.eval.weight_stats import weight_stats


def shell(a: float, b: np.ndarray, d: int = 64) -> np.ndarray:
    """xᵢ = a·u + bᵢ·eᵢ with u, eᵢ orthonormal: ‖xᵢ‖² = a² + bᵢ², cos(xᵢ, xⱼ) = a² / (‖xᵢ‖‖xⱼ‖)."""
    x = np.zeros((len(b), d))
    x[:, 0] = a
    x[np.arange(len(b)), 1 + np.arange(len(b))] = b
    return x


def test_norms_cosines_and_central_shapes():
    b = np.array([1.0, 2.0, 0.5, 1.5])
    x = shell(3.0, b)
    stats = weight_stats(x, obj_idx=[10, 20, 30, 40], n_central=2)
    norms = np.sqrt(9 + b**2)
    cos = 9 / np.outer(norms, norms)
    off = cos[~np.eye(4, dtype=bool)]
    assert stats["params_per_shape"] == 64 and stats["n_shapes"] == 4
    assert stats["mean_l2_norm"] == pytest.approx(norms.mean())
    assert stats["std_l2_norm"] == pytest.approx(norms.std())
    assert stats["mean_pairwise_cos"] == pytest.approx(off.mean())
    assert stats["min_pairwise_cos"] == pytest.approx(9 / (norms[1] * norms[3]))  # the two largest b
    assert stats["max_pairwise_cos"] == pytest.approx(9 / (norms[0] * norms[2]))  # the two smallest b
    # the smallest private component is the most central: obj 30 (b = 0.5), then obj 10 (b = 1)
    assert [c["obj_idx"] for c in stats["central"]] == [30, 10]
    mean = x.mean(0)
    expected = x[2] @ mean / (norms[2] * np.linalg.norm(mean))
    assert stats["central"][0]["cos_to_mean"] == pytest.approx(expected)


def test_variance_by_dimensions_and_components():
    rng = np.random.default_rng(0)
    n, d = 6, 40
    z1 = np.array([1.0, -1, 1, -1, 1, -1])  # two orthogonal, zero-mean shape codes
    z2 = np.array([1.0, 1, -1, -1, 0, 0])
    x = np.full((n, d), 0.25)  # a shared offset carries no variance
    x[:, 0] += 3 * z1  # variance 9
    x[:, 1:4] += z2[:, None]  # three dims of variance 4/6 each
    stats = weight_stats(x + 1e-6 * rng.standard_normal((n, d)), top_dims=(1, 4, 10, 100))
    total = 9 + 3 * 4 / 6
    top = stats["variance_top_dims"]
    assert top["1"] == pytest.approx(9 / total, rel=1e-4)
    assert top["4"] == pytest.approx(1.0, rel=1e-4)
    assert top["100"] == pytest.approx(1.0)  # clipped to D
    pcs = stats["variance_top_pcs"]
    assert pcs["1"] == pytest.approx(9 / total, rel=1e-4) and pcs["5"] == pytest.approx(1.0)
    assert stats["dims_std_below"] == d - 4  # only the noise, std ≈ 1e-6, in the other 36 dims


def test_cli_on_any_run_matrix(tmp_path, capsys):
    # an auto-decoder run folder: latents.safetensors with its obj_idx metadata
    run = tmp_path / "fit_run"
    run.mkdir()
    latents = torch.from_numpy(shell(2.0, np.array([1.0, 1.0, 1.0]), d=8).astype(np.float32))
    save_file({"latents": latents}, run / "latents.safetensors", metadata={"obj_idx": "3,5,7"})
    assert main(["diagnose", "weights", str(run)]) == 0
    stats = json.loads((run / "diagnostics" / "weights.json").read_text())
    for key in ("params_per_shape", "mean_l2_norm", "std_l2_norm", "mean_pairwise_cos", "min_pairwise_cos",
                "max_pairwise_cos", "variance_top_dims"):
        assert key in stats
    assert stats["params_per_shape"] == 8
    assert stats["mean_pairwise_cos"] == pytest.approx(0.8, abs=1e-6)  # 4 / (4 + 1)
    assert {c["obj_idx"] for c in stats["central"]} == {3, 5, 7}
    md = (run / "diagnostics" / "weights.md").read_text()
    assert "| Mean pairwise cosine similarity | 0.8000 | 0.9606 |" in md
    # a bare file with several tensors needs --key
    path = tmp_path / "m.safetensors"
    save_file({"a": latents, "b": latents * 2}, path)
    assert main(["diagnose", "weights", str(path)]) == 2
    assert main(["diagnose", "weights", str(path), "--key", "b", "--out", str(tmp_path / "d")]) == 0
    assert json.loads((tmp_path / "d" / "weights.json").read_text())["mean_l2_norm"] == pytest.approx(
        2 * np.sqrt(5), rel=1e-6)
    assert main(["diagnose", "weights", str(tmp_path / "empty")]) == 2
