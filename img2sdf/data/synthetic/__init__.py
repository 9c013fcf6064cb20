"""The built-in procedural shape source: everyday-object families with per-instance random parameters.

Objaverse-LVIS (paper §2.1) cannot be downloaded everywhere, so ``img2sdf prepare --source synthetic``
draws shapes from 16 training families echoing the LVIS mix and the paper's stress tests (the thin-spoked
wagon wheel of §5.3 and §7.2, the posed humanoid of §6.3) plus held-out families with topology absent from
training (the tunnel and head-and-shoulders bust of §6.3, a coil spring, a ladder) for the OOD split.

Every shape is a manifold3d boolean/hull/revolve/extrude/sweep composition, hence watertight, consistently
wound and outward-oriented; ``build(spec)`` is a pure function of ``spec.seed``. Conventions: Y up,
front facing +Z, centred on the bounding-box centre; the pipeline later normalises to the unit sphere.
Thin parts are sized from the shape's own extent (radius or half-thickness >= 3 % of it), so that at most
a sliver of surface next to edges is thinner than 2.5 % of the bounding radius (tests/test_synthetic.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import trimesh
from manifold3d import Manifold

from ...errors import UserError
from . import curves, figures, furniture, structures, vehicles, vessels
from .primitives import to_trimesh

_BUILDERS: dict[str, Callable[[np.random.Generator], Manifold]] = {
    "table": furniture.table,
    "chair": furniture.chair,
    "bench": furniture.bench,
    "shelf": furniture.shelf,
    "lamp": furniture.lamp,
    "bottle": vessels.bottle,
    "vase": vessels.vase,
    "mug": vessels.mug,
    "bowl": vessels.bowl,
    "wagon_wheel": vehicles.wagon_wheel,
    "snowman": figures.snowman,
    "humanoid": figures.humanoid,
    "quadruped": figures.quadruped,
    "car": vehicles.car,
    "airplane": vehicles.airplane,
    "torus_knot": curves.torus_knot,
    # held out for the out-of-distribution split
    "tunnel": structures.tunnel,
    "bust": figures.bust,
    "helix_spring": curves.helix_spring,
    "ladder": structures.ladder,
}
TRAIN_CATEGORIES: tuple[str, ...] = tuple(_BUILDERS)[:16]
OOD_CATEGORIES: tuple[str, ...] = tuple(_BUILDERS)[16:]

MIN_FACES = 2000  # coarse boxy shapes are subdivided up to this, so surface sampling sees enough triangles
# Instance seeds are seed * 10^8 + split code * 10^7 + index: unique by construction, readable in uids.
_SPLIT_CODES = {"train": 0, "test": 1, "ood": 2}
_MAX_PER_SPLIT = 10**7


@dataclass(frozen=True)
class SyntheticSpec:
    uid: str  # "synthetic-<category>-<seed>": unique and stable
    category: str
    split: str  # "train" | "test" | "ood"
    seed: int  # per-instance seed: build(spec) is deterministic


def _spec(category: str, split: str, index: int, seed: int) -> SyntheticSpec:
    instance = seed * 10 * _MAX_PER_SPLIT + _SPLIT_CODES[split] * _MAX_PER_SPLIT + index
    return SyntheticSpec(
        uid=f"synthetic-{category}-{instance}", category=category, split=split, seed=instance
    )


def catalog(n_train: int, n_test: int, n_ood: int, seed: int = 0) -> list[SyntheticSpec]:
    """Train, test and OOD specs, each split round-robin over its categories.

    Instance ``i`` of a split depends only on (split, i, seed), so a longer catalog extends a shorter one
    (stable prefixes for scaling studies), and test instances never share a seed with training ones.
    """
    for name, n in (("n_train", n_train), ("n_test", n_test), ("n_ood", n_ood)):
        if not 0 <= n < _MAX_PER_SPLIT:
            raise UserError(
                f"synthetic catalog: {name}={n} is out of range; use 0 <= {name} < {_MAX_PER_SPLIT}"
            )
    if seed < 0:
        raise UserError(f"synthetic catalog: seed={seed} is negative; use a seed >= 0")
    specs = [_spec(TRAIN_CATEGORIES[i % len(TRAIN_CATEGORIES)], "train", i, seed) for i in range(n_train)]
    specs += [_spec(TRAIN_CATEGORIES[i % len(TRAIN_CATEGORIES)], "test", i, seed) for i in range(n_test)]
    specs += [_spec(OOD_CATEGORIES[i % len(OOD_CATEGORIES)], "ood", i, seed) for i in range(n_ood)]
    return specs


def build_manifold(category: str, rng: np.random.Generator) -> Manifold:
    """The category's solid, centred on its bounding-box centre and subdivided to at least MIN_FACES."""
    if category not in _BUILDERS:
        raise UserError(f"unknown synthetic category {category!r}; choose one of {', '.join(_BUILDERS)}")
    solid = _BUILDERS[category](rng)
    if solid.is_empty() or solid.status().name != "NoError":
        raise RuntimeError(f"synthetic {category}: manifold3d produced an invalid solid ({solid.status()})")
    pieces = solid.decompose()
    if len(pieces) > 1:  # parts that merely touch can leave zero-volume slivers behind; drop those
        solid = Manifold.compose([p for p in pieces if p.volume() > 1e-6 * solid.volume()])
    lo, hi = np.asarray(solid.bounding_box()).reshape(2, 3)
    solid = solid.translate(tuple(-(lo + hi) / 2))
    # Split long edges until there are enough faces; the uniform refine(n) folds faces over next to the
    # needle triangles that booleans leave (measured: winding number -0.7 just outside the surface).
    edge = float(np.linalg.norm(hi - lo)) / 16
    while solid.num_tri() < MIN_FACES:
        solid = solid.refine_to_length(edge)
        edge /= 2
    return solid


def build_category(category: str, rng: np.random.Generator) -> trimesh.Trimesh:
    return to_trimesh(build_manifold(category, rng))


def build(spec: SyntheticSpec) -> trimesh.Trimesh:
    """The watertight, outward-oriented mesh of one catalog entry (deterministic in ``spec.seed``)."""
    if spec.split not in _SPLIT_CODES:
        raise UserError(f"synthetic spec {spec.uid}: unknown split {spec.split!r}; use train, test or ood")
    allowed = OOD_CATEGORIES if spec.split == "ood" else TRAIN_CATEGORIES
    if spec.category not in allowed:
        raise UserError(
            f"synthetic spec {spec.uid}: category {spec.category!r} is not in the {spec.split} split; "
            f"choose one of {', '.join(allowed)}"
        )
    return build_category(spec.category, np.random.default_rng(spec.seed))
