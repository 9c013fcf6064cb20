"""The data-scale study (paper §6.2-6.3, §7.3): the same held-out evaluation at several training-set sizes.

One large prepared + encoded store is reused: for each size n a *subset view* of it is written — a folder
whose meshes/SDF/renders/features are symlinks into the big store and whose manifest keeps only n training
shapes (a seeded, category-balanced choice; the rest get ``split = "unused"``) while the ``test`` and ``ood``
splits stay identical across sizes. Each size then runs ``fit`` → ``train-dit`` → ``eval-gen`` and the
results are summarised in ``STUDY/scaling.json`` and one plot of generated-vs-retrieval Chamfer over size.
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


def run_scaling(data: Path, out: Path, sizes: list[int], preset: str = "tiny", encoder: str | None = None,
                fit_args: list[str] | None = None, dit_args: list[str] | None = None,
                eval_args: list[str] | None = None, seed: int = 0) -> dict:
    """fit → train-dit → eval-gen per size (each stage resumes/reuses what a previous call finished)."""
    from ..cli.main import main as cli

    source = ShapeStore(data)
    summary = {"data": str(data.resolve()), "preset": preset, "sizes": {}}
    for n in sorted(sizes):
        root = out / f"n{n:05d}"
        store = subset_store(source, root / "data", n, seed)
        stages = [  # (run folder, file that marks it finished, argv)
            (root / "decoder", "latents.safetensors",
             ["fit", str(store.root), "--out", str(root / "decoder"), "--preset", preset, *(fit_args or [])]),
            (root / "dit", "dit.safetensors",
             ["train-dit", str(store.root), "--decoder", str(root / "decoder"), "--out", str(root / "dit"),
              "--preset", preset, *(["--encoder", encoder] if encoder else []), *(dit_args or [])]),
            (root / "eval", "metrics.json",
             ["eval-gen", "--model", str(root / "dit"), "--out", str(root / "eval"), *(eval_args or [])]),
        ]
        for run_dir, finished, argv in stages:
            if (run_dir / finished).is_file():
                continue
            if argv[0] != "eval-gen" and (run_dir / "config.json").is_file():
                argv = [*argv, "--resume"]  # an interrupted earlier call
            print(f"study scaling: n={n}: img2sdf {' '.join(argv)}", flush=True)
            if cli(argv) != 0:
                raise UserError(f"`img2sdf {argv[0]}` failed for n={n} (see above); rerun to resume")
        summary["sizes"][str(n)] = read_json(root / "eval" / "metrics.json")
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
    # the headline protocol of each eval (photo); older metrics.json files hold the splits at the top level
    per_size = {n: m.get(m.get("protocol", {}).get("headline", ""), m) for n, m in summary["sizes"].items()}
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
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_xlabel("training shapes")
        ax.set_ylabel("Chamfer-L1 (lower is better)")
        ax.set_title(f"{split} split")
        ax.legend(fontsize=8)
    fig.suptitle("image → shape: generation vs retrieval over data scale")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
