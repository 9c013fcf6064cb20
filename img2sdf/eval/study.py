"""The data-scale study (paper §6.2-6.3, §7.3): the same held-out evaluation at several training-set sizes.

One large prepared + encoded store is reused: for each size n a *subset view* of it is written — a folder
whose meshes/SDF/renders/features are symlinks into the big store and whose manifest keeps only n training
shapes (a seeded, category-balanced choice; the rest get ``split = "unused"``) while the ``test`` and ``ood``
splits stay identical across sizes. Each size then runs ``fit`` → ``train-dit`` → ``eval-gen`` and the
results are summarised in ``STUDY/scaling.json`` and one plot of generated-vs-retrieval Chamfer over size.

With a shared ``decoder`` run (fitted on the largest size), the sizes not listed in ``refit`` skip ``fit``:
their decoder run is that decoder with only their own shapes' latents
(:func:`~img2sdf.runs.derive.subset_decoder_run`), so only the DiT and its retrieval database change with
size; ``scaling.json`` records which sizes share it.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ..data.store import ShapeStore
from ..errors import UserError
from ..io import read_json, write_json

LINKED = ("meshes", "shapes", "renders", "features")


def subset_store(source: ShapeStore, out: Path, n_train: int, seed: int = 0) -> ShapeStore:
    """Write the subset view of ``source`` with ``n_train`` training shapes, round-robin over categories."""
    manifest = source.load_manifest()
    train = manifest.select(split="train")
    if n_train > len(train):
        raise UserError(f"{source.root}: has {len(train)} training shapes, the study asks for {n_train}; "
                        f"prepare more (--n) or drop that size")
    rng = np.random.default_rng(seed)
    by_cat: dict[str, list[int]] = defaultdict(list)
    for s in train:
        by_cat[s.category].append(s.obj_idx)
    queues = [list(rng.permutation(v)) for _, v in sorted(by_cat.items())]
    keep: set[int] = set()
    while len(keep) < n_train:
        for q in queues:
            if q and len(keep) < n_train:
                keep.add(int(q.pop()))
    for s in manifest.shapes:
        if s.split == "train" and s.obj_idx not in keep:
            s.split = "unused"
    manifest.info = {**manifest.info, "subset_of": str(source.root.resolve()), "n_train": n_train}
    out.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        link, target = out / name, (source.root / name).resolve()
        if target.exists() and not link.exists():
            link.symlink_to(target, target_is_directory=True)
    store = ShapeStore(out)
    store.save_manifest(manifest)
    return store


def run_scaling(data: Path, out: Path, sizes: list[int], fit_config, dit_config, eval_config,
                encoder: str | None = None, seed: int = 0, device: str | None = None,
                decoder: Path | None = None, refit: set[int] | frozenset[int] = frozenset()) -> dict:
    """fit → train-dit → eval-gen per size with the given configs (a :class:`~img2sdf.runs.configs.FitConfig`,
    a :class:`~img2sdf.runs.configs.DiTTrainConfig`, an :class:`~img2sdf.eval.generation_eval.EvalGenConfig`);
    a stage an earlier call finished is reused, one it left unfinished resumes under the resume rule.
    ``decoder``: a finished fit run that the sizes outside ``refit`` share instead of fitting their own."""
    from ..runs.derive import subset_decoder_run
    from ..train.fit import fit
    from ..train.train_dit import train_dit_on_store
    from .generation_eval import run_eval_gen

    source = ShapeStore(data)
    # the first protocol asked for is the one summarised (photo unless only known_pose was evaluated)
    summary = {"data": str(data.resolve()), "preset": fit_config.preset, "protocol": eval_config.protocols[0],
               "shared_decoder": str(decoder.resolve()) if decoder else None, "decoders": {}, "sizes": {}}
    for n in sorted(sizes):
        root = out / f"n{n:05d}"
        store = subset_store(source, root / "data", n, seed)
        dec_dir, dit, evaluation = root / "decoder", root / "dit", root / "eval"
        shared = decoder is not None and n not in refit
        if shared:
            keep = [s.obj_idx for s in store.load_manifest().select(split="train")]
            subset_decoder_run(decoder, dec_dir, keep, store.root)
        elif not (dec_dir / "latents.safetensors").is_file():
            print(f"study scaling: n={n}: fit → {dec_dir}", flush=True)
            fit(store.root, dec_dir, fit_config, resume=(dec_dir / "config.json").is_file(), device=device)
        summary["decoders"][str(n)] = "shared" if shared else "own fit"
        if not (dit / "dit.safetensors").is_file():
            print(f"study scaling: n={n}: train-dit → {dit}", flush=True)
            train_dit_on_store(store.root, dec_dir, dit, dit_config, encoder,
                               resume=(dit / "config.json").is_file(), device=device)
        if not (evaluation / "metrics.json").is_file():
            print(f"study scaling: n={n}: eval-gen → {evaluation}", flush=True)
            run_eval_gen(dit, evaluation, eval_config, device=device)
        summary["sizes"][str(n)] = read_json(evaluation / "metrics.json")
    write_json(out / "scaling.json", summary)
    plot_scaling(summary, out / "scaling.png")
    return summary


def plot_scaling(summary: dict, path: Path) -> None:
    """Chamfer-L1 of generated vs retrieval (and the reconstruct ceiling) over training-set size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import atomic_path

    sizes = sorted(int(n) for n in summary["sizes"])
    # the summarised protocol of each eval; older metrics.json files hold the splits at the top level
    protocol = summary.get("protocol", "photo")
    per_size = {n: m.get(protocol, m) for n, m in summary["sizes"].items()}
    splits = [s for s in ("test", "ood") if s in per_size[str(sizes[0])]]
    fig, axes = plt.subplots(1, len(splits), figsize=(5.5 * len(splits), 4), squeeze=False)
    styles = {"generated": "-o", "retrieval": "--s", "reconstruct": ":^"}
    for ax, split in zip(axes[0], splits, strict=True):
        for views in per_size[str(sizes[0])][split]:
            for method, style in styles.items():
                if method == "reconstruct" and views != "1":
                    continue  # view-independent: one ceiling line
                ys = [per_size[str(n)][split][views][method]["chamfer_l1"] for n in sizes]
                label = "reconstruct (ceiling)" if method == "reconstruct" else f"{method}, {views} view(s)"
                ax.plot(sizes, ys, style, label=label, alpha=1.0 if views == "4" else 0.6)
        ax.set_xscale("log")
        own = summary.get("decoders", {}) if summary.get("shared_decoder") else {}
        ax.set_xticks(sizes, [f"{n}*" if own.get(str(n)) == "own fit" else str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_xlabel("training shapes")
        ax.set_ylabel("Chamfer-L1 (lower is better)")
        ax.set_title(f"{split} split")
        ax.legend(fontsize=8)
    shared = " (sizes share one decoder; * = own decoder fit)" if summary.get("shared_decoder") else ""
    fig.suptitle(f"image → shape: generation vs retrieval over data scale{shared}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
