"""The three families on the same shapes, scored the same way (the comparison §7.2 and §7.4 say is missing).

``study families``: one subset of a prepared, encoded store (the same ``test`` and ``ood`` splits) trains

- **A** (§3): one ReLU+PE MLP per shape (``fit-mlps``, anchor init) and the weight-space DiT (``train-wdit``);
- **B** (§4): the weight autoencoder on A's MLPs (``train-wae``) and a latent DiT on its latents;
- **C** (§5-6): the auto-decoder (``fit``) and the latent DiT (``train-dit``);

then every family turns the same photos of each held-out shape (eval-gen's photo protocol: new cameras,
photo files, ``load_view``, unknown pose; 1 and 4 views) into a mesh, scored against the ground truth with
eval/metrics.py's protocol (Chamfer-L1, F-score@1 %, IoU). Collapse statistics: how many distinct training
shapes the predictions' top-1 cosine neighbours are (§3.3's attractor). Writes ``OUT/families.json``,
``OUT/families.md`` and ``OUT/families.png`` (input, A, B, C, ground truth; thin shapes first, §7.2).
Every stage is a run folder under ``OUT/`` and is reused when finished, resumed when not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.store import ShapeStore, shape_name
from ..errors import UserError
from ..io import write_json, write_text

FAMILIES = ("A", "B", "C")
LABELS = {"A": "A: weight DiT", "B": "B: weight AE + latent DiT", "C": "C: auto-decoder + latent DiT"}


@dataclass
class FamiliesConfig:
    n_train: int = 64  # training shapes of the subset (category-balanced, as study scaling)
    splits: tuple[str, ...] = ("test", "ood")
    views: tuple[int, ...] = (1, 4)
    max_shapes: int = 0  # held-out shapes per split (0 = all)
    resolution: int = 64  # marching-cubes resolution of every mesh
    n_points: int = 20_000  # surface points per metric
    pictures: int = 6  # held-out shapes in the picture grid
    seed: int = 0


def train_families(data: Path, out: Path, cfg: FamiliesConfig, configs: dict, encoder: str | None = None,
                   device: str | None = None, progress: bool = True) -> dict[str, Path]:
    """Train (or reuse / resume) every family's runs under ``out``; ``configs`` maps a run kind (``fit``,
    ``train-dit``, ``fit-mlps``, ``train-wdit``, ``train-wae``) to its config; returns the DiT runs."""
    from ..runs.configs import make_config
    from ..runs.pairs import load_wae_pairs
    from ..train.fit import fit
    from ..train.fit_mlps import fit_mlps
    from ..train.train_dit import train_dit, train_dit_on_store, train_wdit_on_store
    from ..train.train_wae import train_wae_on_run
    from .study import subset_store

    store = subset_store(ShapeStore(data), out / "data", cfg.n_train, cfg.seed)

    def stage(name: str, done: Path, run_dir: Path, go) -> None:
        if done.is_file():
            return
        print(f"study families: {name} → {run_dir}", flush=True)
        t0 = time.perf_counter()
        go(resume=(run_dir / "config.json").is_file())
        print(f"study families: {name} done in {time.perf_counter() - t0:.0f} s", flush=True)

    c_dec, c_dit = out / "C" / "decoder", out / "C" / "dit"
    stage("C fit", c_dec / "latents.safetensors", c_dec,
          lambda resume: fit(store.root, c_dec, configs["fit"], resume=resume, device=device,
                             progress=progress))
    stage("C train-dit", c_dit / "dit.safetensors", c_dit,
          lambda resume: train_dit_on_store(store.root, c_dec, c_dit, configs["train-dit"], encoder,
                                            resume=resume, progress=progress, device=device))
    facts = _facts(c_dit)
    encoder, views, groups = facts["encoder"], facts["views"], tuple(facts.get("pool_groups") or ()) or None
    mlps, a_dit = out / "A" / "mlps", out / "A" / "wdit"
    stage("A fit-mlps", mlps / "weights.safetensors", mlps,
          lambda resume: fit_mlps(store.root, mlps, configs["fit-mlps"], resume=resume, device=device,
                                  progress=progress))
    stage("A train-wdit", a_dit / "dit.safetensors", a_dit,
          lambda resume: train_wdit_on_store(store.root, mlps, a_dit, configs["train-wdit"], encoder,
                                             resume=resume, progress=progress, device=device))
    wae, b_dit = out / "B" / "wae", out / "B" / "dit"
    stage("B train-wae", wae / "latents.safetensors", wae,
          lambda resume: train_wae_on_run(mlps, configs["train-wae"], wae, resume=resume, progress=progress,
                                          device=device))

    def train_b(resume: bool) -> None:
        pairs = load_wae_pairs(store.root, wae, encoder, views, groups)
        latent = int(pairs.latents.shape[1])
        b_cfg = make_config("train-dit", overrides=[f"model.latent_dim={latent}"], base=configs["train-dit"])
        provenance = {"data_root": str(store.root.resolve()), "wae_run": str(wae.resolve()),
                      "encoder": encoder, "views": views, **({"pool_groups": list(groups)} if groups else {})}
        train_dit(pairs, b_cfg, b_dit, provenance, resume, progress, device)

    stage("B train-dit on the AE latents", b_dit / "dit.safetensors", b_dit, train_b)
    return {"A": a_dit, "B": b_dit, "C": c_dit}


def _facts(run_dir: Path) -> dict:
    from ..runs.run import Run

    return Run.open(run_dir).facts


class _Family:
    """One family's DiT, its training targets and the map from a sampled target to an SDF function."""

    def __init__(self, name: str, dit_dir: Path, device):
        from ..generate.weight_runs import target_sdf
        from ..runs.load import load_dit_run
        from ..runs.pairs import load_run_pairs

        self.name = name
        self.dit = load_dit_run(dit_dir).to(device)
        self.sdf_fn = target_sdf(self.dit, device)
        self.train_targets = load_run_pairs(self.dit).latents.double().numpy()


def evaluate_families(out: Path, dits: dict[str, Path], cfg: FamiliesConfig, device: str | None = None,
                      progress: bool = True) -> dict:
    """Score every family on the held-out splits with the photo protocol; writes families.json/.md/.png."""
    from tqdm import tqdm

    from ..devices import choose_device
    from ..generate.mesh import mesh_sdf
    from ..generate.neighbours import top_k
    from ..generate.pipeline import ImageToShape
    from ..generate.predict import sample_targets
    from .diagnostics import collapse_stats
    from .generation_eval import SPHERE_RADIUS, EvalGenConfig, PhotoInputs
    from .metrics import METRIC_PROTOCOL, shape_statistics, surface_metrics

    dev = choose_device(0, device)
    c_model = ImageToShape.load(dits["C"], device=str(dev))  # the photo encoder (one for every family)
    store = ShapeStore(c_model.dit.info["data_root"])
    families = {f: _Family(f, dits[f], dev) for f in FAMILIES}
    inputs = PhotoInputs(c_model, store, EvalGenConfig(seed=cfg.seed), out)
    manifest = store.load_manifest()
    import trimesh

    sphere = trimesh.creation.icosphere(4, SPHERE_RADIUS)
    stand_in = trimesh.creation.box(extents=(2.0, 2.0, 2.0))  # a failed mesh scores as the bounding cube
    results: dict = {"families": {f: LABELS[f] for f in FAMILIES}, "n_train": {}, "splits": {}, "shapes": [],
                     "protocol": {**METRIC_PROTOCOL, "input": "eval-gen's photo protocol (new cameras, photo "
                                  "files, load_view, unknown pose)", "mesh_resolution": cfg.resolution,
                                  "surface_points": cfg.n_points, "seed": cfg.seed}}
    for f, fam in families.items():
        results["n_train"][f] = len(fam.train_targets)
    pictures: list[dict] = []
    t0 = time.perf_counter()
    for split in cfg.splits:
        shapes = manifest.select(split=split)
        if cfg.max_shapes:
            shapes = shapes[: cfg.max_shapes]
        if not shapes:
            raise UserError(f"{store.root}: no shapes in split {split!r}")
        ids = [s.obj_idx for s in shapes]
        feats = inputs.photo_features(ids, max(cfg.views))
        results["splits"][split] = {}
        for n_views in cfg.views:
            rows = {f: [] for f in (*FAMILIES, "sphere")}
            collapse = {}
            for f, fam in families.items():
                targets = sample_targets(fam.dit, feats[:, :n_views], None, seed=cfg.seed)
                top1 = top_k(targets.double().numpy(), fam.train_targets, 1)[0][:, 0]
                collapse[f] = collapse_stats(top1, len(fam.train_targets))
                for b, i in enumerate(tqdm(ids, desc=f"families {split} {n_views} view(s) {f}",
                                           disable=not progress)):
                    try:
                        mesh = mesh_sdf(fam.sdf_fn(targets[b]), cfg.resolution)
                    except UserError:  # the field has no surface
                        mesh = None
                    m = surface_metrics(stand_in if mesh is None else mesh, store.load_mesh(i), cfg.n_points,
                                        seed=cfg.seed)
                    rows[f].append({"obj_idx": i, "failed": mesh is None,
                                    **{k: float(m[k]) for k in ("chamfer_l1", "fscore_1pct", "iou")}})
                    if split == cfg.splits[0] and n_views == max(cfg.views):
                        pictures.append({"obj_idx": i, "family": f, "mesh": mesh})
            for i in ids:
                m = surface_metrics(sphere, store.load_mesh(i), cfg.n_points, seed=cfg.seed)
                rows["sphere"].append({"obj_idx": i, **{k: float(m[k]) for k in ("chamfer_l1", "fscore_1pct",
                                                                                   "iou")}})
            results["splits"][split][str(n_views)] = {
                f: {**_mean(rows[f]), **({"collapse": collapse[f]} if f in collapse else {})} for f in rows}
            for f in FAMILIES:
                for r in rows[f]:
                    results["shapes"].append({"split": split, "views": n_views, "family": f, **r})
    results["seconds"] = time.perf_counter() - t0
    gts = {i: store.load_mesh(i) for i in {p["obj_idx"] for p in pictures}}
    thin_first = sorted(gts, key=lambda i: shape_statistics(gts[i])["volume"])[: cfg.pictures]
    _picture_grid(out / "families.png", thin_first, pictures, gts, inputs, manifest)
    write_json(out / "families.json", results)
    write_text(out / "families.md", families_markdown(results))
    return results


def _mean(rows: list[dict]) -> dict:
    keys = ("chamfer_l1", "fscore_1pct", "iou")
    return {**{k: float(np.mean([r[k] for r in rows])) for k in keys}, "n": len(rows),
            "n_failed": int(sum(r.get("failed", False) for r in rows))}


def _picture_grid(path: Path, order: list[int], pictures: list[dict], gts: dict, inputs, manifest) -> None:
    from PIL import Image

    from .gallery import contact_sheet, thumbnail

    size = 160
    meshes = {(p["obj_idx"], p["family"]): p["mesh"] for p in pictures}
    category = {s.obj_idx: s.category for s in manifest.shapes}
    images, labels = [], []
    for i in order:
        photo = inputs.photo_records.get(i, [{}])[0].get("file")
        tile = (np.asarray(Image.open(photo).convert("RGB").resize((size, size))) if photo
                else np.zeros((size, size, 3), np.uint8))
        images.append(tile)
        labels.append(f"{shape_name(i)} {category.get(i, '')}: photo 1")
        for f in FAMILIES:
            mesh = meshes.get((i, f))
            images.append(thumbnail(mesh, size))
            labels.append(f"{f}" + (" (no surface)" if mesh is None else ""))
        images.append(thumbnail(gts[i], size))
        labels.append("ground truth")
    if images:
        contact_sheet(images, labels, cols=len(FAMILIES) + 2).save(path)


def families_markdown(results: dict) -> str:
    lines = ["# Three families, same shapes, same photos (paper §7.2, §7.4)", "",
             "Training shapes: " + ", ".join(f"{f} {n}" for f, n in results["n_train"].items())
             + ". Input: eval-gen's photo protocol (unknown pose). Distinct top-1: how many different "
             "training shapes the predictions' nearest training targets (cosine) are (§3.3).", "",
             "| split | views | family | Chamfer-L1 | F@1 % | IoU | no surface | distinct top-1 |",
             "|---|---|---|---|---|---|---|---|"]
    for split, per_views in results["splits"].items():
        for views, per_family in per_views.items():
            for f, r in per_family.items():
                col = r.get("collapse")
                distinct = f"{col['distinct_top1']} of {col['n_predictions']}" if col else "—"
                name = results["families"].get(f, "sphere (reference)")
                lines.append(f"| {split} | {views} | {name} | {r['chamfer_l1']:.4f} | "
                             f"{r['fscore_1pct']:.3f} | {r['iou']:.3f} | {r.get('n_failed', 0)} of "
                             f"{r['n']} | {distinct} |")
    return "\n".join(lines + ["", "![input, A, B, C, ground truth](families.png)", ""])


def run_families(data: Path, out: Path, cfg: FamiliesConfig, configs: dict, encoder: str | None = None,
                 device: str | None = None, progress: bool = True) -> dict:
    """:func:`train_families` then :func:`evaluate_families`."""
    dits = train_families(data, out, cfg, configs, encoder, device, progress)
    return evaluate_families(out, dits, cfg, device, progress)
