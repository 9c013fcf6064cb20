"""``train-dit`` and ``study`` through the command line on the shared tiny store and decoder run: --device
cpu, the resume rule of train-dit, and the study driving fit → train-dit → eval-gen as library calls."""

from __future__ import annotations

import json

import pytest
import torch
from test_generate import tiny_runs  # noqa: F401  (the shared tiny store + decoder + DiT fixture)

from img2sdf.cli.main import main
from img2sdf.errors import UserError
from img2sdf.runs import Run, load_decoder_run, load_dit_run, read_log
from img2sdf.runs.derive import subset_decoder_run

SMALL_DIT = ["--set", "batch_size=4", "--set", "model.d_model=32", "--set", "model.heads=2", "--set",
             "log_every=3", "--set", "ckpt_every=3", "--set", "warmup_steps=2"]


def test_train_dit_cli_trains_records_its_inputs_and_resumes_by_the_rule(tiny_runs, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "dit"
    args = ["train-dit", str(tiny_runs["data"]), "--decoder", str(tiny_runs["decoder"]), "--out", str(out),
            "--no-progress", "--device", "cpu"]
    assert main([*args, "--preset", "tiny", "--steps", "6", *SMALL_DIT]) == 0
    assert "train-dit: 6 shapes" in capsys.readouterr().out
    run = Run.open(out, "train-dit")
    assert run.data_root == tiny_runs["data"].resolve() and run.obj_idx == list(range(6))
    assert run.facts["decoder_run"] == str(tiny_runs["decoder"].resolve())
    assert (run.facts["encoder"], run.facts["views"], run.facts["world_size"]) == ("hog", "photo", 1)
    assert run.config.model.feature_dim == load_dit_run(out).model.cfg.feature_dim
    assert main([*args, "--resume", "--steps", "9"]) == 0  # the run's own settings, 3 more steps
    assert "train-dit: resume: applying steps 6 → 9" in capsys.readouterr().out
    assert [int(r["step"]) for r in read_log(out / "log.csv")] == [3, 6, 9]
    assert main([*args, "--resume", "--set", "lr=1.0"]) == 2
    assert "lr: 0.001 → 1.0" in capsys.readouterr().err
    assert main([*args, "--resume", "--encoder", "hog", "--views", "renders"]) == 2
    assert "views: 'photo' → 'renders'" in capsys.readouterr().err


def test_study_scaling_runs_every_stage_as_a_library_call(tiny_runs, tmp_path, capsys):  # noqa: F811
    study = tmp_path / "study"
    fit_sets = ("epochs=3", "threads=1", "points_per_shape=256")
    dit_sets = ("steps=3", "batch_size=4", "model.d_model=32", "model.heads=2")
    args = ["study", "scaling", str(tiny_runs["data"]), "--out", str(study), "--sizes", "3,6",
            "--decoder", str(tiny_runs["decoder"]), "--refit", "3", "--device", "cpu",
            *[a for s in fit_sets for a in ("--fit-set", s)],
            *[a for s in dit_sets for a in ("--dit-set", s)],
            *[f"--eval-arg={a}" for a in ("--max-shapes=1", "--resolution=16", "--points=500", "--steps=2",
                                          "--reconstruct-steps=3", "--views=1", "--recall-shapes=2",
                                          "--pictures=1", "--protocols=known_pose", "--splits=test")]]
    assert main(args) == 0, capsys.readouterr()
    printed = capsys.readouterr().out
    summary = json.loads((study / "scaling.json").read_text())
    assert list(summary["sizes"]) == ["3", "6"] and summary["protocol"] == "known_pose"
    assert summary["decoders"] == {"3": "own fit", "6": "shared"}
    own = Run.open(study / "n00003" / "decoder", "fit")
    assert len(own.obj_idx) == 3 and own.config.epochs == 3 and "shared_from" not in own.facts
    shared, source = load_decoder_run(study / "n00006" / "decoder"), load_decoder_run(tiny_runs["decoder"])
    assert shared.obj_idx == source.obj_idx and torch.equal(shared.latents, source.latents)
    assert Run.open(study / "n00006" / "decoder", "fit").facts["decoder_fitted_on"] == 6
    assert Run.open(study / "n00003" / "dit", "train-dit").config.steps == 3
    assert (study / "scaling.png").stat().st_size > 0
    assert "n=    3 (own fit decoder) test 1 view(s), known_pose protocol" in printed
    assert "n=    6 (shared decoder) test 1 view(s)" in printed
    assert main(args) == 0  # every stage finished: nothing reruns
    assert main([*args[:-1], "--eval-arg=--bogus"]) == 2
    assert main([*args[:7], "--refit", "3"]) == 2  # --refit without --decoder
    assert "only with --decoder" in capsys.readouterr().err


def test_subset_decoder_run_keeps_the_decoder_and_only_the_chosen_latents(tiny_runs, tmp_path):  # noqa: F811
    source = load_decoder_run(tiny_runs["decoder"])
    out = subset_decoder_run(tiny_runs["decoder"], tmp_path / "sub", [4, 1, 2], tiny_runs["data"])
    sub = load_decoder_run(out)
    assert sub.obj_idx == [1, 2, 4]  # the source's row order
    assert torch.equal(sub.latents, source.latents[[1, 2, 4]])
    assert all(torch.equal(a, b) for a, b in zip(sub.decoder.state_dict().values(),
                                                 source.decoder.state_dict().values(), strict=True))
    assert subset_decoder_run(tiny_runs["decoder"], out, [1, 2, 4], tiny_runs["data"]) == out  # same: no-op
    with pytest.raises(UserError, match="another decoder run"):
        subset_decoder_run(tiny_runs["decoder"], out, [1, 2], tiny_runs["data"])
    with pytest.raises(UserError, match="no latent for shapes \\[99\\]"):
        subset_decoder_run(tiny_runs["decoder"], tmp_path / "x", [1, 99], tiny_runs["data"])
