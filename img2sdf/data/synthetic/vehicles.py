"""Vehicle families facing +Z: car, airplane, wagon wheel (the paper's thin-geometry test, §5.3, §7.2).

Car bodies and fins are side silhouettes extruded across the width; wings are top-view polygons extruded
to a thickness of at least 6 % of the bounding half-diagonal, so every plate survives a 128^3 grid.
"""

from __future__ import annotations

import numpy as np
from manifold3d import Manifold

from .primitives import box, extrude_polygon, revolve_y, rod, sphere, subtract, torus, union


def car(rng: np.random.Generator) -> Manifold:
    """Sedan, hatchback, van or pickup: a lower body, a narrower cabin, and four wheels."""
    kind = rng.choice(["sedan", "hatchback", "van", "pickup"])
    L = rng.uniform(1.6, 2.4)
    W = L * rng.uniform(0.38, 0.45)
    wheel_r = L * rng.uniform(0.09, 0.12)
    clearance = wheel_r * rng.uniform(0.5, 0.8)
    belt = clearance + L * rng.uniform(0.13, 0.18)
    roof = belt + L * (rng.uniform(0.2, 0.28) if kind == "van" else rng.uniform(0.12, 0.18))
    z0, z1 = -L / 2, L / 2
    nose = belt - L * rng.uniform(0.02, 0.06)
    lower = [(z0, clearance), (z1, clearance), (z1, nose), (z1 - L * 0.05, belt), (z0, belt)]
    parts = [extrude_polygon(lower, W, axis="x")]
    hood = (
        L
        * {
            "sedan": rng.uniform(0.25, 0.32),
            "hatchback": rng.uniform(0.2, 0.28),
            "van": rng.uniform(0.05, 0.15),
            "pickup": rng.uniform(0.25, 0.3),
        }[kind]
    )
    screen = L * rng.uniform(0.08, 0.15)
    if kind == "sedan":
        rear, back_slope = z0 + L * rng.uniform(0.15, 0.22), L * rng.uniform(0.08, 0.14)
    elif kind == "pickup":
        rear, back_slope = z0 + L * rng.uniform(0.38, 0.45), L * 0.01
    else:
        rear, back_slope = z0 + L * 0.02, L * rng.uniform(0.02, 0.08)
    front = z1 - hood
    cabin = [(rear, belt - 0.01), (front, belt - 0.01), (front - screen, roof), (rear + back_slope, roof)]
    parts.append(extrude_polygon(cabin, W * rng.uniform(0.82, 0.92), axis="x"))
    if kind == "pickup":  # the open bed: a tub cut into the rear of the lower body
        wall = 0.06 * 0.5 * np.hypot(L, W)
        y_lo, y_hi = clearance + wall, belt + L * 0.1
        bed = box((W - 2 * wall, y_hi - y_lo, rear - z0 - 2 * wall), (0, (y_lo + y_hi) / 2, (rear + z0) / 2))
        parts[0] = subtract(parts[0], [bed])
    axle = L * rng.uniform(0.28, 0.36)
    tyre_w = W * rng.uniform(0.18, 0.25)
    for z in (-axle, axle):
        for sx in (-1, 1):
            x = sx * (W / 2 - tyre_w / 2 + W * 0.03)
            parts.append(
                rod((x - tyre_w / 2, wheel_r, z), (x + tyre_w / 2, wheel_r, z), wheel_r, segments=40)
            )
    return union(parts)


def airplane(rng: np.random.Generator) -> Manifold:
    """A fuselage of revolution along Z (nose at +Z), swept and tapered wings with dihedral, tail, engines."""
    L = rng.uniform(1.6, 2.4)
    span = L * rng.uniform(0.7, 1.2)
    R = 0.5 * np.hypot(L, span)
    fr = max(L * rng.uniform(0.04, 0.065), 0.05 * R)
    t = np.linspace(0, 1, 10)
    nose_len, tail_len = L * rng.uniform(0.08, 0.15), L * rng.uniform(0.2, 0.3)
    nose = np.stack([fr * np.sqrt(1 - t**2), L - nose_len * (1 - t)], 1)  # elliptic, tip on the axis at L
    tail = np.stack([fr * (0.35 + 0.65 * t), tail_len * t], 1)
    profile = [(0, 0), *tail, *nose]
    # The fuselage is revolved about Y; lay it along Z with the nose forward and centre it.
    parts = [revolve_y(profile, 32).rotate((90.0, 0.0, 0.0)).translate((0.0, 0.0, -L / 2))]
    thick = 0.06 * R
    wing_y = fr * rng.uniform(-0.6, 0.6)

    def wing(half_span, root, taper, sweep, z_root, y, dihedral):
        tip = root * taper
        top = [
            (0, z_root + root / 2),
            (half_span, z_root + root / 2 - sweep),
            (half_span, z_root + root / 2 - sweep - tip),
            (0, z_root - root / 2),
        ]
        halves = []
        for sx in (-1, 1):
            pts = [(sx * x, z) for x, z in top]
            half = (
                extrude_polygon(pts, thick, axis="y").rotate((0.0, 0.0, sx * dihedral)).translate((0, y, 0))
            )
            halves.append(half)
        return halves

    root, taper = L * rng.uniform(0.14, 0.22), rng.uniform(0.3, 0.7)
    sweep = span / 2 * np.tan(np.radians(rng.uniform(0, 35)))
    z_root, dihedral = L * rng.uniform(-0.05, 0.1), rng.uniform(0, 8)
    parts += wing(span / 2, root, taper, sweep, z_root, wing_y, dihedral)
    tail_z = -L / 2 + tail_len * 0.35
    parts += wing(span * rng.uniform(0.15, 0.22), root * 0.5, 0.6, root * 0.3, tail_z, fr * 0.3, 0.0)
    fin_h = L * rng.uniform(0.1, 0.16)
    fin = [
        (tail_z + root * 0.35, 0),
        (tail_z - root * 0.35, 0),
        (tail_z - root * 0.5, fin_h),
        (tail_z - root * 0.2, fin_h),
    ]
    parts.append(extrude_polygon(fin, thick, axis="x").translate((0, fr * 0.5, 0)))
    n_engines = int(rng.choice([0, 2, 2, 4]))
    er = max(fr * rng.uniform(0.35, 0.5), 0.04 * R)
    for k in range(n_engines // 2):
        f = 0.3 + 0.3 * k  # fraction of the half span
        chord = root * (1 + (taper - 1) * f)
        z = z_root + root / 2 - sweep * f - chord / 2
        y_wing = wing_y + f * span / 2 * np.tan(np.radians(dihedral)) - thick / 2
        for sx in (-1, 1):
            x = sx * f * span / 2
            y = y_wing - er * 1.1
            parts.append(rod((x, y, z - er * 2), (x, y, z + chord / 2 + er * 1.5), er, segments=24))
            parts.append(box((0.06 * R, er * 1.6, chord * 0.5), (x, y_wing - er * 0.3, z)))  # pylon
    return union(parts)


def wagon_wheel(rng: np.random.Generator) -> Manifold:
    """Hub, 6-16 spokes and a rim in the XY plane (axle along Z): genus = number of spokes.

    The spoke radius is 3-4 % of the wheel radius; the hub grows with the spoke count so that neighbouring
    spokes leave it with a gap between them (without it they fuse into a solid disc around the hub).
    """
    k = int(rng.integers(6, 17))
    R0 = 1.0
    rs = R0 * rng.uniform(0.03, 0.04)
    rh = max(R0 * rng.uniform(0.12, 0.2), 1.7 * rs * k / np.pi)
    rim_w = R0 * rng.uniform(0.06, 0.12)
    rim_d = R0 * rng.uniform(0.08, 0.14)
    hub_d = rim_d * rng.uniform(1.5, 3.0)
    if rng.random() < 0.5:
        rim = subtract(
            rod((0, 0, -rim_d / 2), (0, 0, rim_d / 2), R0, segments=96),
            [rod((0, 0, -rim_d), (0, 0, rim_d), R0 - rim_w, segments=96)],
        )
    else:
        rim = torus(R0 - rim_w / 2, rim_w / 2, segments=96).scale((1.0, 1.0, rim_d / rim_w))
    parts = [rim, rod((0, 0, -hub_d / 2), (0, 0, hub_d / 2), rh, segments=48)]
    parts.append(sphere(rh * 0.5, (0, 0, hub_d / 2), scale=(1, 1, 0.8), segments=24))  # axle cap
    phase = rng.uniform(0, 2 * np.pi)
    taper = rng.uniform(1.0, 1.4)
    for j in range(k):
        a = phase + 2 * np.pi * j / k
        direction = np.array([np.cos(a), np.sin(a), 0.0])
        parts.append(rod(direction * rh * 0.5, direction * (R0 - rim_w / 2), rs * taper, rs, segments=12))
    return union(parts)
