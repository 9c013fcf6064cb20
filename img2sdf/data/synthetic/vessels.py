"""Vessel families, mostly surfaces of revolution about Y: bottle, vase, mug (handle: genus 1), bowl.

Hollow vessels keep walls at least 6 % of the bounding half-diagonal thick, so that both sides of a wall
survive a 128^3 grid (paper §2.2).
"""

from __future__ import annotations

import numpy as np
from manifold3d import Manifold

from .primitives import hollow_revolve_y, revolve_y, rod, subtract, torus, union


def _smoothstep(t: np.ndarray) -> np.ndarray:
    return t * t * (3 - 2 * t)


def bottle(rng: np.random.Generator) -> Manifold:
    body_r = rng.uniform(0.12, 0.25)
    body_h = rng.uniform(0.35, 0.9)
    shoulder_h = rng.uniform(0.05, 0.25)
    neck_r = body_r * rng.uniform(0.25, 0.5)
    neck_h = rng.uniform(0.05, 0.25)
    R = 0.5 * np.hypot(2 * body_r, body_h + shoulder_h + neck_h)
    neck_r = max(neck_r, 0.05 * R)
    t = np.linspace(0, 1, 12)
    shoulder = np.stack([body_r + (neck_r - body_r) * _smoothstep(t), body_h + shoulder_h * t], 1)
    lip = neck_r * rng.uniform(1.1, 1.3)
    top = body_h + shoulder_h + neck_h
    profile = [
        (0, 0),
        (body_r * 0.92, 0),
        (body_r, body_r * 0.08),
        *shoulder[1:],
        (neck_r, top - 0.03),
        (lip, top - 0.03),
        (lip, top),
        (0, top),
    ]
    if rng.random() < 0.3:  # a waist: wine-bottle vs. sauce-bottle silhouettes
        profile.insert(3, (body_r * rng.uniform(0.75, 0.9), body_h * 0.5))
    segments = 48 if rng.random() < 0.8 else int(rng.choice([4, 6, 8]))  # some bottles are faceted
    return revolve_y(profile, segments)


def vase(rng: np.random.Generator) -> Manifold:
    """A hollow vase whose radius is a random low-frequency Fourier series of height."""
    h = rng.uniform(0.4, 1.0)
    r0 = rng.uniform(0.12, 0.3)
    y = np.linspace(0, h, 40)
    radius = np.full_like(y, r0)
    for k in range(1, 4):
        radius += r0 * rng.uniform(-0.35, 0.35) / k * np.sin(k * np.pi * y / h + rng.uniform(0, 2 * np.pi))
    R = 0.5 * np.hypot(2 * radius.max(), h)
    wall = 0.07 * R
    radius = np.maximum(radius, wall + 0.08 * R)
    return hollow_revolve_y(np.stack([radius, y], 1), wall, h * rng.uniform(0.6, 0.9))


def mug(rng: np.random.Generator) -> Manifold:
    """A cup with a closed-loop handle on +X; the only tunnel is the handle's, so the genus is 1."""
    r, h = rng.uniform(0.35, 0.55), rng.uniform(0.6, 1.2)
    R = 0.5 * np.hypot(2 * r + 0.6, h)
    wall = 0.07 * R
    parts = [rod((0, 0, 0), (0, h, 0), r, r * rng.uniform(1.0, 1.15), segments=64)]
    cavity = rod((0, wall * 1.5, 0), (0, h + 1.0, 0), r - wall, segments=64)
    loop_r = rng.uniform(0.35, 0.45) * h
    tube_r = max(rng.uniform(0.045, 0.07) * R, 0.035 * R)
    centre = (r, h * rng.uniform(0.45, 0.55), 0.0)
    # The handle is a torus in the XY plane squashed along X; its inner half is buried in the wall.
    handle = torus(loop_r, tube_r).scale((rng.uniform(0.55, 0.8), 1.0, 1.0)).translate(centre)
    return subtract(union([*parts, handle]), [cavity])


def bowl(rng: np.random.Generator) -> Manifold:
    """A superellipse bowl with an optional foot ring."""
    rb, h = rng.uniform(0.4, 0.8), rng.uniform(0.2, 0.5)
    n = rng.uniform(2.0, 4.0)
    R = 0.5 * np.hypot(2 * rb, h)
    wall = 0.07 * R
    theta = np.linspace(0, np.pi / 2, 24)
    outer = np.stack([rb * np.sin(theta) ** (2 / n), h - h * np.cos(theta) ** (2 / n)], 1)
    solid = hollow_revolve_y(outer, wall, h)
    if rng.random() < 0.6:
        foot_r = rb * rng.uniform(0.3, 0.5)
        # The ring reaches up into the curved underside so it fuses with the bowl.
        top = float(np.interp(foot_r, outer[:, 0], outer[:, 1])) + 0.5 * wall
        foot = subtract(
            rod((0, -wall, 0), (0, top, 0), foot_r, segments=48),
            [rod((0, -2 * wall, 0), (0, 0, 0), foot_r - wall, segments=48)],
        )
        solid = union([solid, foot])
    return solid
