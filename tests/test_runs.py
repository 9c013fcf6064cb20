"""Run folders (img2sdf.runs): one config.json schema, one log writer and plotter, and the one resume rule —
changed settings that are safe mid-run are applied with a note, any other change stops with one line naming
it — for every trainer, here through ``img2sdf fit`` (train-dit: test_dit, fit-mlps: test_fit_mlps)."""

from __future__ import annotations

import json

import pytest
import torch
from test_fit import build_store

from img2sdf.cli.main import main
from img2sdf.errors import UserError
from img2sdf.runs import Run, read_log, write_log

SETS = ["decoder.hidden=32", "decoder.layers=3", "decoder.skip_layer=1", "shapes_per_step=2",
        "points_per_shape=256", "epochs=4", "ckpt_every=2", "log_every=1", "threads=1"]


def fit_args(data, run, *extra):
    return ["fit", str(data), "--out", str(run), "--no-progress", "--device", "cpu", *extra]


@pytest.fixture
def fitted(tmp_path):
    torch.set_num_threads(1)
    build_store(tmp_path / "data", [("sphere", "train"), ("box", "train")], n_points=2000)
    sets = [a for s in SETS for a in ("--set", s)]
    assert main(fit_args(tmp_path / "data", tmp_path / "run", "--preset", "tiny", *sets)) == 0
    return tmp_path


def test_fit_resume_applies_more_epochs_with_a_note(fitted, capsys):
    run = fitted / "run"
    capsys.readouterr()
    assert main(fit_args(fitted / "data", run, "--resume", "--epochs", "6")) == 0
    assert "fit: resume: applying epochs 4 → 6" in capsys.readouterr().out
    assert [int(r["step"]) for r in read_log(run / "log.csv")] == [1, 2, 3, 4, 5, 6]  # 1 step per epoch
    assert Run.open(run).config.epochs == 6
    assert main(fit_args(fitted / "data", run, "--resume")) == 0  # nothing changed: nothing to do
    assert [int(r["step"]) for r in read_log(run / "log.csv")][-1] == 6


@pytest.mark.parametrize("extra, listed", [
    (["--set", "lr_decoder=0.1"], "lr_decoder: 0.0015 → 0.1"),
    (["--preset", "paper"], "preset: 'tiny' → 'paper'; decoder.hidden: 32 → 512"),
    (["--set", "decoder.hidden=64", "--epochs", "9"], "decoder.hidden: 32 → 64; resume without them"),
])
def test_fit_resume_with_an_unsafe_change_is_one_line_naming_it(fitted, capsys, extra, listed):
    before = (fitted / "run" / "config.json").read_text()
    assert main(fit_args(fitted / "data", fitted / "run", "--resume", *extra)) == 2
    err = capsys.readouterr().err
    assert "cannot change mid-run: " in err and listed in err and len(err.strip().splitlines()) == 1
    assert (fitted / "run" / "config.json").read_text() == before  # nothing applied, not even epochs


def test_fit_resume_on_other_data_is_refused(fitted, capsys):
    build_store(fitted / "other", [("torus", "train"), ("box", "train")], n_points=2000)
    assert main(fit_args(fitted / "other", fitted / "run", "--resume")) == 2
    assert f"data_root: '{(fitted / 'data').resolve()}' → '{(fitted / 'other').resolve()}'" in \
        capsys.readouterr().err


def test_fit_resume_under_another_world_size(fitted):
    """The global batch is the run's shapes_per_step, split over the processes: a new process count that
    divides it is applied (every step sees the same shapes); one that does not is refused, never truncated."""
    from img2sdf.train.distributed import DistInfo
    from img2sdf.train.fit import _start_run

    two = DistInfo(rank=0, world_size=2, local_rank=0, device=torch.device("cpu"))
    run = _start_run(fitted / "data", fitted / "run", None, True, two)
    assert run.facts["world_size"] == 2 and run.config.shapes_per_step == 2
    three = DistInfo(rank=0, world_size=3, local_rank=0, device=torch.device("cpu"))
    with pytest.raises(UserError, match="shapes_per_step=2 must be divisible by the 3 torchrun processes"):
        _start_run(fitted / "data", fitted / "run", None, True, three)


def test_config_json_has_one_schema_and_old_runs_still_open(fitted, tmp_path):
    saved = json.loads((fitted / "run" / "config.json").read_text())
    assert list(saved)[:4] == ["kind", "config", "data_root", "obj_idx"] and saved["kind"] == "fit"
    assert saved["data_root"] == str((fitted / "data").resolve()) and saved["obj_idx"] == [0, 1]
    # the schemas before: {"fit": ...} for fit, {"train": ..., "data": ...} for train-dit
    old_fit = {"fit": saved["config"], "data_root": saved["data_root"], "obj_idx": [0, 1], "world_size": 1}
    (tmp_path / "old_fit").mkdir()
    (tmp_path / "old_fit" / "config.json").write_text(json.dumps(old_fit))
    run = Run.open(tmp_path / "old_fit")
    assert run.kind == "fit" and run.config.decoder.hidden == 32 and run.facts == {"world_size": 1}
    old_dit = {"train": {"steps": 7}, "n_shapes": 2, "obj_idx": [0, 1], "preset": "tiny", "data": "/d",
               "decoder_run": "/r", "encoder": "hog"}
    (tmp_path / "old_dit").mkdir()
    (tmp_path / "old_dit" / "config.json").write_text(json.dumps(old_dit))
    run = Run.open(tmp_path / "old_dit")
    assert (run.kind, run.config.steps, str(run.data_root)) == ("train-dit", 7, "/d")
    assert run.config.preset == "tiny"  # the preset's name stood beside the config, not in it
    assert run.facts == {"decoder_run": "/r", "encoder": "hog"}
    with pytest.raises(UserError, match="a 'train-dit' run, not a 'fit' run"):
        Run.open(tmp_path / "old_dit", "fit")


def test_one_log_writer_and_reader(tmp_path):
    rows = [{"step": s, "loss": 1.0 / s, "job": "a"} for s in range(1, 6)]
    write_log(tmp_path / "log.csv", rows, ("step", "loss", "job"))
    assert (tmp_path / "log.csv").read_text().splitlines()[:3] == ["step,loss,job", "1,1,a", "2,0.5,a"]
    assert [r["step"] for r in read_log(tmp_path / "log.csv", upto=3)] == ["1", "2", "3"]
    assert read_log(tmp_path / "missing.csv") == []
