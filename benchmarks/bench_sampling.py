"""What caps photo recall, and what the choice among DDIM samples buys (issue 9; generate --samples/--pick).

Prints JSON. The model is a DiT run or bundle (default: the bundled one) on a prepared store with its photo
pool encoded; every photo is eval-gen's (``PhotoInputs``: new cameras, photo files, load_view, unknown pose,
seed 0), so the numbers pair with eval-gen's.

``--split train`` (recall, §6.2): one new photo of each of the first N training shapes →
- the DiT's top-1 recall for one sample, the medoid and the mean of S samples, and the x0 prediction at the
  noisiest step (mean over S noises); ``any_sample_top1``: some one of the S samples has the true top-1;
- the same DiT from one of the shape's own training views (its first random-camera pool photo): fit, not
  generalisation;
- the encoder alone, in the same run: feature nearest neighbour over the views the DiT trained on (what
  eval-gen's retrieval picks), and linear / one-hidden-layer identity classifiers trained on those views —
  how often the features name the photographed shape at all.

``--split test|ood`` (held-out shapes, photo protocol, 1 and 4 photos): Chamfer-L1 of one sample, the
medoid, the mean and retrieval, meshes flagged by the guard (fragmented, box-filling, tiny), and the paired
bootstrap interval of each against retrieval.

    python benchmarks/bench_sampling.py --data runs/p976c/data --split train --n 300
    python benchmarks/bench_sampling.py --data runs/p976c/data --split test --n 60
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from img2sdf.data.store import ShapeStore
from img2sdf.encoders.cache import POOL_GROUPS, pool_indices
from img2sdf.eval.diagnostics import recall_stats
from img2sdf.eval.generation_eval import (
    EvalGenConfig,
    PhotoInputs,
    _Meshes,
    paired_interval,
    retrieve_nearest,
    unit_rows,
)
from img2sdf.generate.guard import mesh_flags
from img2sdf.generate.pipeline import ImageToShape


def choices(model, feats: np.ndarray, samples: int) -> dict[str, np.ndarray]:
    """One sample, the medoid and the mean of ``samples`` (the library's own reductions) → latents [B, 64]."""
    return {"one_sample": model.sample_latents(feats, samples=1),
            "medoid": model.sample_latents(feats, samples=samples, pick="medoid"),
            "mean": model.sample_latents(feats, samples=samples, pick="mean")}


@torch.no_grad()
def x0_at_noisiest(model, feats: np.ndarray, n_noise: int) -> np.ndarray:
    """The x0 prediction at t = T - 1 averaged over noises: the network's own estimate of E[x0 | views]."""
    net = model.dit.model
    denoise = net.denoiser(torch.as_tensor(feats, dtype=torch.float32), None, None)
    gen = torch.Generator().manual_seed(0)
    t = torch.full((len(feats),), model.dit.diffusion.timesteps - 1, dtype=torch.long)
    preds = [denoise(torch.randn(len(feats), net.cfg.latent_dim, generator=gen), t) for _ in range(n_noise)]
    return net.unstandardise(torch.stack(preds).mean(0)).numpy()


def identity_probe(train_x: np.ndarray, query: np.ndarray, hidden: int, epochs: int = 30) -> dict:
    """A classifier of shape identity (one class per training shape) trained on standardised features
    [N, V, D] of the training views; top-1 accuracy on ``query`` [N, D] (one per shape, row = class)."""
    n, v, d = train_x.shape
    x = torch.as_tensor(train_x.reshape(-1, d))
    y = torch.arange(n).repeat_interleave(v)
    torch.manual_seed(0)
    net = (torch.nn.Linear(d, n) if not hidden else
           torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.GELU(), torch.nn.Dropout(0.2),
                               torch.nn.Linear(hidden, n)))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        net.train()
        for batch in torch.randperm(len(x), generator=gen).split(512):
            loss = torch.nn.functional.cross_entropy(net(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        on_query = net(torch.as_tensor(query)).argmax(1).numpy()
        on_train = (net(x[::7]).argmax(1) == y[::7]).float().mean().item()
    return {"hidden": hidden, "photo_top1": float(np.mean(on_query == np.arange(len(query)))),
            "training_views_top1": on_train}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="DiT run or bundle (default: the bundled model)")
    ap.add_argument("--data", required=True, help="the prepared store, photo pool encoded")
    ap.add_argument("--split", default="train", choices=("train", "test", "ood"))
    ap.add_argument("--n", type=int, default=300, help="shapes (the first n of the split)")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--out", default="benchmarks/out/sampling", help="photo files and the JSON go here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    model = ImageToShape.load(args.model)
    store = ShapeStore(args.data)
    cfg = EvalGenConfig()
    out = Path(args.out) / args.split
    inputs = PhotoInputs(model, store, cfg, out)
    pool, _, meta = store.load_features(inputs.pool_name)
    cols = pool_indices(meta, tuple(model.dit.info.get("pool_groups", POOL_GROUPS)))
    net = model.dit.model
    mean, std = net.feature_mean.numpy(), net.feature_std.numpy()
    train_ids = np.asarray(model.train_obj_idx)
    train_std = (np.asarray(pool[train_ids[:, None], cols[None]], dtype=np.float32) - mean) / std
    train_u = unit_rows(train_std)
    res: dict = {"split": args.split, "samples": args.samples, "n_train_shapes": len(train_ids),
                 "encoder": model.dit.info["encoder"], "model": str(model.dit.path)}

    if args.split == "train":
        rows = np.arange(min(args.n, len(train_ids)))
        feats = inputs.photo_features([int(i) for i in train_ids[rows]], 1)  # [N, 1, D]
        many = np.stack([model.sample_latents(feats, seed=s) for s in range(args.samples)])
        res["dit"] = {m: recall_stats(z, model.train_latents, rows)
                      for m, z in {**choices(model, feats, args.samples),
                                   "x0_at_noisiest": x0_at_noisiest(model, feats, args.samples)}.items()}
        top1 = (unit_rows(many) @ unit_rows(model.train_latents).T).argmax(-1)  # [S, N]
        res["dit"]["any_sample_top1"] = float(np.mean(np.any(top1 == rows[None], axis=0)))
        own = np.asarray(pool[train_ids[rows][:, None], pool_indices(meta, ("random",))[None, :1]],
                         dtype=np.float32)
        res["dit_from_own_training_view"] = {
            "one_sample": recall_stats(model.sample_latents(own), model.train_latents, rows),
            "x0_at_noisiest": recall_stats(x0_at_noisiest(model, own, args.samples), model.train_latents,
                                           rows)}
        nearest = retrieve_nearest(unit_rows((feats - mean) / std), train_u)
        cats = np.array([model.categories[int(i)] for i in train_ids])
        query = ((feats[:, 0] - mean) / std).astype(np.float32)
        res["encoder"] = {"feature_nn": {"photo_top1": float(np.mean(nearest == rows)),
                                         "photo_category": float(np.mean(cats[nearest] == cats[rows]))},
                          "linear_probe": identity_probe(train_std, query, 0),
                          "mlp_probe": identity_probe(train_std, query, 1024)}
    else:
        shapes = store.load_manifest().select(split=args.split)[: args.n]
        ids = [s.obj_idx for s in shapes]
        feats = inputs.photo_features(ids, 4)
        meshes = _Meshes(model, store, cfg)
        for k in (1, 4):
            f = feats[:, :k]
            latents = choices(model, f, args.samples)
            latents["retrieval"] = model.train_latents[retrieve_nearest(unit_rows((f - mean) / std), train_u)]
            chamfer = {m: [] for m in latents}
            flagged = dict.fromkeys(latents, 0)
            for b, i in enumerate(ids):
                for m, z in latents.items():
                    mesh = meshes.decode(z[b])
                    chamfer[m].append(meshes.score(mesh, i)["chamfer_l1"])
                    flagged[m] += int(mesh is None or bool(mesh_flags(mesh)))
            res[f"{k}_views"] = {m: {"chamfer_l1": float(np.mean(v)), "flagged": flagged[m],
                                     **({} if m == "retrieval" else {"minus_retrieval": paired_interval(
                                         np.array(v), np.array(chamfer["retrieval"]), 2000, 0)})}
                                 for m, v in chamfer.items()}
            res["n"] = len(ids)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
