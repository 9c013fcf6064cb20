"""Families A and B and the paper's DiT diagnostics end to end on the tiny store of ``test_generate``:
fit-mlps → train-wdit → diagnose timesteps / ranking → mesh WRUN; train-wae → metrics.json → mesh ARUN;
the same diagnostics on the latent DiT run."""

from __future__ import annotations

import json

import pytest
import torch
from test_generate import build_tiny_runs

from img2sdf.cli.main import main
from img2sdf.runs import Run


@pytest.fixture(scope="module")
def family_runs(tmp_path_factory):
    torch.set_num_threads(1)
    paths = build_tiny_runs(tmp_path_factory.getbasetemp() / "tiny_runs")
    root = tmp_path_factory.mktemp("families")
    paths["mlps"], paths["wdit"] = root / "mlps", root / "wdit"
    # lr 3e-4: at 1e-3 this store's anchor (obj_0000) collapses to a field above δ everywhere (README)
    assert main(["fit-mlps", str(paths["data"]), "--out", str(paths["mlps"]), "--preset", "tiny",
                 "--no-progress", "--threads", "1", "--epochs", "20", "--set", "anchor_epochs=40",
                 "--set", "lr=3e-4", "--set", "anchor_lr=3e-4", "--set", "eval_points=2000"]) == 0
    assert main(["train-wdit", str(paths["data"]), "--mlps", str(paths["mlps"]), "--out", str(paths["wdit"]),
                 "--preset", "tiny", "--steps", "40", "--no-progress", "--device", "cpu",
                 "--set", "model.d_model=32", "--set", "batch_size=8"]) == 0
    return paths


def test_train_wdit_writes_a_weight_dit_run_with_the_ablation_flags(family_runs, tmp_path, capsys):
    run = Run.open(family_runs["wdit"], "train-wdit")
    assert run.facts["mlp_run"] == str(family_runs["mlps"].resolve()) and "decoder_run" not in run.facts
    assert run.config.model.tokens == "chunk" and run.config.model.standardise
    assert (run.config.cfg_dropout, run.config.pose_dropout) == (0.1, 0.2)  # §3.2
    assert run.obj_idx == Run.open(family_runs["mlps"], "fit-mlps").obj_idx
    assert (run.path / "dit.safetensors").is_file() and (run.path / "loss.png").is_file()
    # the Phase 8 / 9 ablations and the per-layer tokeniser are flags
    out = tmp_path / "ablation"
    args = ["train-wdit", str(family_runs["data"]), "--mlps", str(family_runs["mlps"]), "--out", str(out),
            "--no-progress", "--device", "cpu"]
    assert main([*args, "--preset", "tiny", "--steps", "2", "--set", "model.d_model=32", "--tokens", "layer",
                 "--raw", "--no-dropout"]) == 0
    cfg = Run.open(out, "train-wdit").config
    assert cfg.model.tokens == "layer" and not cfg.model.standardise
    assert (cfg.cfg_dropout, cfg.pose_dropout) == (0.0, 0.0)
    # the one resume rule: more steps apply, a changed tokeniser is refused with its name
    assert main([*args, "--resume", "--steps", "3"]) == 0
    assert "train-wdit: resume: applying steps 2 → 3" in capsys.readouterr().out
    assert main([*args, "--resume", "--tokens", "chunk"]) == 2
    assert "model.tokens: 'layer' → 'chunk'" in capsys.readouterr().err
    assert main(["train-wdit", str(family_runs["data"]), "--mlps", str(tmp_path / "nope"), "--out",
                 str(tmp_path / "x"), "--no-progress"]) == 2  # a missing run is a one-line error


def test_diagnose_timesteps_table(family_runs):
    for run in (family_runs["wdit"], family_runs["dit"]):
        assert main(["diagnose", "timesteps", str(run), "--threads", "1", "--device", "cpu"]) == 0
        table = json.loads((run / "diagnostics" / "timesteps.json").read_text())
        rows = table["rows"]
        assert [r["t"] for r in rows] == [0, 50, 100, 200, 300, 450]
        abar = [r["alpha_bar"] for r in rows]
        assert abar == sorted(abar, reverse=True) and abar[0] > 0.999 and abar[-1] < 0.03
        for r in rows:  # ε̂ − ε = −√(ᾱ/(1−ᾱ)) (x̂0 − x0) exactly, so the two MSEs differ by that factor
            assert r["mse_eps_implied"] == pytest.approx(r["alpha_bar"] / (1 - r["alpha_bar"]) * r["mse_x0"],
                                                         rel=1e-3)
        assert (run / "diagnostics" / "timesteps.md").read_text().count("\n| ") == 7
    # the latent DiT of test_generate recalls its shapes from their views, far below the mean predictor at
    # every t; the weight DiT after 40 steps is still the mean predictor at every t (Table 1's flat profile)
    latent = json.loads((family_runs["dit"] / "diagnostics" / "timesteps.json").read_text())
    assert max(r["mse_x0"] for r in latent["rows"]) < 0.2 * latent["mse_x0_of_mean"]
    weight = json.loads((family_runs["wdit"] / "diagnostics" / "timesteps.json").read_text())
    assert min(r["mse_x0"] for r in weight["rows"]) > 0.8 * weight["mse_x0_of_mean"]
    assert weight["flatness"] > 0.9
    assert main(["diagnose", "timesteps", str(family_runs["dit"]), "--t", "0,500"]) == 2


def test_diagnose_ranking(family_runs):
    assert main(["diagnose", "ranking", str(family_runs["wdit"]), "--shapes", "all", "--steps", "5",
                 "--threads", "1"]) == 0
    result = json.loads((family_runs["wdit"] / "diagnostics" / "ranking.json").read_text())
    assert result["n_inputs"] == result["n_train"] == 6 and result["top_k"] == 5
    for r in result["inputs"]:
        cos = [t["cos"] for t in r["top"]]
        assert len(cos) == 5 and cos == sorted(cos, reverse=True)
        assert r["cos_pred_true"] <= cos[0] + 1e-12
    assert result["collapse"]["distinct_top1"] >= 1 and "attractors" in result
    # on the latent DiT run every training shape recalls itself (§6.2)
    assert main(["diagnose", "ranking", str(family_runs["dit"]), "--shapes", "0,2,5"]) == 0
    latent = json.loads((family_runs["dit"] / "diagnostics" / "ranking.json").read_text())
    assert latent["recall"]["recall_top1"] == 1.0
    assert [r["true_rank"] for r in latent["inputs"]] == [1, 1, 1]
    assert main(["diagnose", "ranking", str(family_runs["dit"]), "--shapes", "6"]) == 2  # a test shape


def test_mesh_of_dit_predictions(family_runs, tmp_path):
    for run in ("wdit", "dit"):
        out = tmp_path / f"{run}.ply"
        code = main(["mesh", str(family_runs[run]), "--shape", "0", "-o", str(out), "--resolution", "32"])
        assert code in (0, 2) and (code == 2 or out.stat().st_size > 0)
    assert (tmp_path / "dit.ply").is_file()  # the latent DiT's prediction is a shape


def test_train_wae_reports_section_4_numbers_and_meshes(family_runs, tmp_path):
    out = tmp_path / "wae"
    assert main(["train-wae", "--mlps", str(family_runs["mlps"]), "--out", str(out), "--latent", "16",
                 "--preset", "tiny", "--epochs", "30", "--no-progress", "--set", "model.hidden=[64,64,64]",
                 "--set", "mesh_resolution=32", "--set", "mesh_points=2000"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["latent_dim"] == 16 and m["n_shapes"] == 6
    assert 0 < m["weight_mse"] and m["cos_rec_true_min"] <= m["cos_rec_true_mean"] <= 1
    assert m["weight_pairwise_cos"] > 0.9  # anchor-started MLPs: the thin shell
    assert m["paper"] is None  # §4.1 reports latent 128 and 256 only
    for key in ("reconstructed", "fitted"):
        assert m["meshes"][key]["n"] == 6
    assert all("reconstructed" in s and "fitted" in s for s in m["per_shape"])
    # mesh ARUN --shape I meshes the reconstruction that metrics.json scored (the same 32³ grid)
    code = main(["mesh", str(out), "--shape", "1", "-o", str(tmp_path / "rec.ply"), "--resolution", "32"])
    assert code == (2 if "error" in m["per_shape"][1]["reconstructed"] else 0)
    assert main(["train-wae", "--mlps", str(family_runs["mlps"]), "--out", str(out), "--no-progress"]) == 2


def test_study_families_trains_a_b_c_on_one_subset_and_scores_the_same_photos(family_runs, tmp_path, capsys):
    out = tmp_path / "families"
    sets = {"--fit-set": ("epochs=3", "threads=1", "points_per_shape=256"),
            "--dit-set": ("steps=3", "batch_size=4", "model.d_model=32", "model.heads=2"),
            "--mlps-set": ("epochs=2", "anchor_epochs=2", "eval_points=500", "lr=3e-4", "anchor_lr=3e-4"),
            "--wdit-set": ("steps=2", "batch_size=4", "model.d_model=32"),
            "--wae-set": ("epochs=2", "model.hidden=[32,32,32]", "model.latent_dim=8")}
    args = ["study", "families", str(family_runs["data"]), "--out", str(out), "--n", "4", "--device", "cpu",
            *[a for flag, values in sets.items() for v in values for a in (flag, v)],
            *[f"--eval-arg={a}" for a in ("--max-shapes=2", "--resolution=16", "--points=500", "--views=1,2",
                                          "--splits=test", "--pictures=2", "--no-progress")]]
    assert main(args) == 0, capsys.readouterr()
    printed = capsys.readouterr().out
    res = json.loads((out / "families.json").read_text())
    assert res["n_train"] == {"A": 4, "B": 4, "C": 4}  # one subset for every family
    for views in ("1", "2"):
        per_family = res["splits"]["test"][views]
        assert set(per_family) == {"A", "B", "C", "sphere"}
        for f in ("A", "B", "C"):
            assert per_family[f]["n"] == 2 and per_family[f]["collapse"]["n_predictions"] == 2
            assert 0 <= per_family[f]["chamfer_l1"] < 10
    # the same held-out shapes for every family, each scored once per views setting
    shapes = {(r["family"], r["views"]): sorted(x["obj_idx"] for x in res["shapes"]
                                                if (x["family"], x["views"]) == (r["family"], r["views"]))
              for r in res["shapes"]}
    assert len(set(map(tuple, shapes.values()))) == 1 and len(shapes) == 6
    b = Run.open(out / "B" / "dit", "train-dit")
    assert b.facts["wae_run"] == str((out / "B" / "wae").resolve()) and b.config.model.latent_dim == 8
    c = Run.open(out / "C" / "dit")
    assert Run.open(out / "A" / "mlps", "fit-mlps").obj_idx == b.obj_idx == c.obj_idx
    assert (out / "families.png").stat().st_size > 0 and "| test | 1 | A: weight DiT |" in (
        out / "families.md").read_text()
    assert "test 1 view(s) Chamfer-L1: A " in printed
    # Family B's DiT meshes through the AE's decoder; rerunning reuses every finished stage
    assert main(["mesh", str(out / "B" / "dit"), "--shape", str(b.obj_idx[0]), "-o", str(tmp_path / "b.ply"),
                 "--resolution", "16"]) in (0, 2)
    assert main(args) == 0 and "study families: C fit" not in capsys.readouterr().out
    assert main([*args[:5], "--eval-arg=--bogus"]) == 2


def test_generate_refuses_a_weight_dit_run_in_one_line(family_runs, tmp_path, capsys):
    photo = family_runs["data"] / "renders" / "obj_0000" / "view_00.png"
    assert main(["generate", str(photo), "--model", str(family_runs["wdit"]), "-o", str(tmp_path / "x.glb"),
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "a weight-space DiT run (Family A or B)" in err and len(err.splitlines()) == 1
