"""Held-out (OOD) structures with topology absent from the training families: tunnel and ladder.

The tunnel echoes the paper's OOD probe (§6.3, "a thin tunnel"): a long arched vault, hollow along Z,
which the paper notes no training shape resembled; the ladder is a row of through-holes (genus = rungs - 1).
"""

from __future__ import annotations

import numpy as np
from manifold3d import Manifold

from .primitives import box, extrude_polygon, rod, subtract, union


def _arch(width: float, wall_h: float, rise: float, n: int = 24) -> np.ndarray:
    """Outline of an arch opening: vertical walls to ``wall_h``, then an elliptic crown of height ``rise``."""
    a = np.linspace(0.0, np.pi, n)
    crown = np.stack([width / 2 * np.cos(a), wall_h + rise * np.sin(a)], 1)
    return np.vstack([[[width / 2, 0.0]], crown, [[-width / 2, 0.0]]])


def tunnel(rng: np.random.Generator) -> Manifold:
    """An arched vault along Z, optionally floored (then it is a tube, genus 1), with portal frames."""
    width = rng.uniform(0.6, 1.2)
    wall_h = width * rng.uniform(0.2, 0.8)
    rise = width / 2 * rng.uniform(0.4, 1.2)
    length = width * rng.uniform(2.0, 5.0)
    R = 0.5 * np.hypot(length, np.hypot(width, wall_h + rise))
    wall = R * rng.uniform(0.06, 0.09)
    floored = rng.random() < 0.5
    # A floored tunnel stands on a slab of thickness ``wall``; an open one has its cutter sunk below the
    # ground. The cutters overshoot the ends so no skin is left over the mouths.
    floor = wall if floored else 0.0
    shift = floor if floored else -wall
    inner = _arch(width, wall_h, rise)
    vault = extrude_polygon(_arch(width + 2 * wall, wall_h + floor, rise + wall), length, axis="z")
    parts = [subtract(vault, [extrude_polygon(inner, length * 1.2, axis="z").translate((0.0, shift, 0.0))])]
    if rng.random() < 0.6:  # portal frames at both mouths
        frame_d = wall * rng.uniform(1.0, 1.6)
        frame = subtract(
            extrude_polygon(_arch(width + 4 * wall, wall_h + floor, rise + 2 * wall), frame_d, axis="z"),
            [extrude_polygon(inner, frame_d * 2, axis="z").translate((0.0, shift, 0.0))],
        )
        parts += [frame.translate((0.0, 0.0, sz * (length - frame_d) / 2)) for sz in (-1, 1)]
    return union(parts)


def ladder(rng: np.random.Generator) -> Manifold:
    """Two rails and 4-12 rungs, leaning back a little; some are stepladders with a rear leg frame."""
    height = rng.uniform(1.2, 2.5)
    width = height * rng.uniform(0.2, 0.35)
    R = 0.5 * np.hypot(height, width)
    rail = R * rng.uniform(0.035, 0.05)
    n = int(rng.integers(4, 13))
    spacing = height / (n + 1)
    rung_r = min(R * rng.uniform(0.03, 0.04), 0.3 * spacing)
    rung_r = max(rung_r, 0.03 * R)
    parts = []
    for sx in (-1, 1):
        parts.append(box((2 * rail, height, 2.5 * rail), (sx * (width / 2 + rail), height / 2, 0)))
    parts += [
        rod((-width / 2 - rail, y, 0), (width / 2 + rail, y, 0), rung_r, segments=16)
        for y in spacing * np.arange(1, n + 1)
    ]
    if rng.random() < 0.6:  # a single ladder leaning back (towards -Z) as if against a wall
        return union(parts).rotate((-rng.uniform(0, 12), 0.0, 0.0))
    # A stepladder: the front ladder leans back by half the spread, a rear leg frame mirrors it.
    half = np.radians(rng.uniform(6, 11))
    top = np.array([0.0, height * np.cos(half), -height * np.sin(half)])
    foot_z = 2 * top[2]
    rear = []
    for sx in (-1, 1):
        x = sx * (width / 2 + rail)
        rear.append(rod((x, 0.0, foot_z), (x, top[1], top[2] - rail), rail, segments=16))
    brace_y = height * 0.35
    brace_z = foot_z + (top[2] - foot_z) * brace_y / top[1] - rail
    rear.append(
        rod((-width / 2 - rail, brace_y, brace_z), (width / 2 + rail, brace_y, brace_z), rung_r, segments=16)
    )
    return union([union(parts).rotate((-np.degrees(half), 0.0, 0.0)), *rear])
