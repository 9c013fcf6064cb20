"""Run folders: config.json (one schema), log.csv, loss.png, checkpoints, the resume rule and loading, for
every trainer. The only place that knows a run's layout; it imports nothing above ``models/``."""

from .configs import KINDS, make_config
from .load import (
                   DecoderRun,
                   DiTRun,
                   MLPRun,
                   WAERun,
                   load_decoder_run,
                   load_dit_run,
                   load_mlp_run,
                   load_run,
                   load_wae_run,
)
from .run import Run, plot_loss, read_log, write_log

__all__ = ["KINDS", "DecoderRun", "DiTRun", "MLPRun", "Run", "WAERun", "load_decoder_run", "load_dit_run",
           "load_mlp_run", "load_run", "load_wae_run", "make_config", "plot_loss", "read_log", "write_log"]
