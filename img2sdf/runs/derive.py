"""Runs derived from a finished run without training it again.

:func:`subset_decoder_run`: the same auto-decoder with only some shapes' latents, so a DiT can be trained
and evaluated on a subset of the shapes the decoder was fitted on (``study scaling --decoder``: the sizes
that share one decoder). The derived run records where it came from and on how many shapes its decoder was
fitted, since that decoder has seen shapes the subset does not hold.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..io import write_bytes
from .load import load_decoder_run
from .run import Run


def subset_decoder_run(source: str | Path, out: str | Path, keep: list[int], data_root: str | Path) -> Path:
    """Write decoder run ``out``: ``source``'s decoder and the latents of the shapes ``keep`` (in the
    source's row order), data root ``data_root``. Rewriting the same subset is a no-op; another is refused."""
    from safetensors.torch import save

    source, out = Path(source), Path(out)
    src = load_decoder_run(source)
    if not (source / "decoder.safetensors").is_file():
        raise UserError(f"{source}: an unfinished decoder run; finish `img2sdf fit` before sharing it")
    wanted = set(int(i) for i in keep)
    missing = sorted(wanted - set(src.obj_idx))
    if missing:
        more = " …" if len(missing) > 5 else ""
        raise UserError(f"{source}: has no latent for shapes {missing[:5]}{more}; a shared decoder must "
                        f"have been fitted on every shape of the subset")
    rows = [r for r, i in enumerate(src.obj_idx) if i in wanted]
    obj_idx = [src.obj_idx[r] for r in rows]
    facts = {"shared_from": str(source.resolve()), "decoder_fitted_on": len(src.obj_idx)}
    if (out / "config.json").is_file():
        old = Run.open(out, "fit")
        if old.obj_idx != obj_idx or old.facts.get("shared_from") != facts["shared_from"]:
            raise UserError(f"{out}: already holds another decoder run; choose another folder")
        return out
    out.mkdir(parents=True, exist_ok=True)
    write_bytes(out / "decoder.safetensors", (source / "decoder.safetensors").read_bytes())
    latents = src.latents[rows].detach().cpu().contiguous()
    write_bytes(out / "latents.safetensors",
                save({"latents": latents}, metadata={"obj_idx": ",".join(map(str, obj_idx))}))
    Run(out, "fit", src.config, Path(data_root).resolve(), obj_idx, facts).save()  # last: marks it complete
    return out
