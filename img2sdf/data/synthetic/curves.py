"""Swept-tube families: the torus knot / ring (training) and the helix spring (held out, OOD).

Tubes come from ``primitives.sweep``. Its tube is valid only while the radius stays below half the
curve's self-clearance, so each family measures that clearance and shrinks the tube to fit.
"""

from __future__ import annotations

import numpy as np
from manifold3d import Manifold

from .primitives import sphere, sweep, union


def self_clearance(curve: np.ndarray, closed: bool, skip_arc: float) -> float:
    """Smallest distance between two curve points that are more than ``skip_arc`` apart along the curve."""
    seg = np.linalg.norm(np.diff(curve, axis=0, append=curve[:1] if closed else curve[-1:]), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)[:-1]])
    along = np.abs(arc[:, None] - arc[None, :])
    if closed:
        along = np.minimum(along, seg.sum() - along)
    dist = np.linalg.norm(curve[:, None, :] - curve[None, :, :], axis=-1)
    return float(dist[along > skip_arc].min())


def torus_knot(rng: np.random.Generator) -> Manifold:
    """A (p, q) torus knot tube, or with p = 1 a wavy ring (an unknot); upright facing +Z or lying flat."""
    p, q = [(1, 3), (1, 5), (2, 3), (2, 5), (3, 2), (3, 4), (2, 7), (3, 5)][int(rng.integers(0, 8))]
    ring_r = 1.0
    wave = ring_r * rng.uniform(0.3, 0.5)
    phi = np.linspace(0.0, 2 * np.pi, 160 * max(p, 2), endpoint=False)
    radius = ring_r + wave * np.cos(q * phi)
    curve = np.stack([radius * np.cos(p * phi), radius * np.sin(p * phi), wave * np.sin(q * phi)], 1)
    bound = ring_r + wave
    tube = bound * rng.uniform(0.07, 0.16)
    tube = min(tube, 0.45 * self_clearance(curve, True, np.pi * tube))
    tube = max(tube, 0.035 * bound)
    solid = sweep(curve, tube, closed=True, sides=20)
    if rng.random() < 0.3:  # lying flat instead of standing up
        solid = solid.rotate((90.0, 0.0, 0.0))
    return solid


def helix_spring(rng: np.random.Generator) -> Manifold:
    """A coil spring standing on Y with 3-10 turns and straight end tangs; held out as an OOD category."""
    turns = rng.uniform(3, 10)
    coil_r = rng.uniform(0.25, 0.5)
    height = rng.uniform(0.6, 1.8)
    R = 0.5 * np.hypot(2 * coil_r, height)
    pitch = height / turns
    # Neighbouring turns are one pitch apart: the wire diameter must leave a gap between them.
    wire = min(R * rng.uniform(0.03, 0.06), 0.35 * pitch)
    wire = max(wire, 0.03 * R)
    pitch = max(pitch, 2.8 * wire)
    t = np.linspace(0.0, turns * 2 * np.pi, int(60 * turns))
    helix = np.stack([coil_r * np.cos(t), pitch * t / (2 * np.pi), coil_r * np.sin(t)], 1)
    tang = rng.uniform(0.1, 0.3) * coil_r
    start = helix[0] + np.array([0.0, 0.0, -1.0]) * np.linspace(tang, 0, 6)[:, None]
    end_dir = np.array([-np.sin(t[-1]), 0.0, np.cos(t[-1])])
    end = helix[-1] + end_dir * np.linspace(0, tang, 6)[1:, None]
    curve = np.vstack([start[:-1], helix, end])
    parts = [sweep(curve, wire, closed=False, sides=16)]
    if rng.random() < 0.5:  # ball ends, as on a toy spring
        parts += [sphere(wire * 1.6, curve[0], segments=16), sphere(wire * 1.6, curve[-1], segments=16)]
    return union(parts)
