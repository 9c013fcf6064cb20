"""Furniture families: table, chair, bench (stool to bench), shelf, lamp.

Sizes are in metres-like units; every thin part (legs, rails, stems, panels) has a radius or half-thickness
of at least 3 % of ``R``, the half-diagonal of the object's bounding box, which bounds the unit-sphere
normalisation radius from above, so thin parts keep >= 2 voxels at a 128^3 grid (paper §2.2, §7.2).
"""

from __future__ import annotations

import numpy as np
from manifold3d import Manifold

from .primitives import box, capsule, rod, rounded_box, sphere, union


def _half_diag(*extent: float) -> float:
    return 0.5 * float(np.linalg.norm(extent))


def _legs(corners, top_y: float, radius: float, foot_radius: float, splay: float, square: bool) -> list:
    """Four legs from under a top at ``top_y`` down to the floor, optionally splayed outwards."""
    legs = []
    for x, z in corners:
        foot = (x * (1 + splay), 0.0, z * (1 + splay))
        if square:
            legs.append(box((2 * radius, top_y, 2 * radius), (x, top_y / 2, z)))
        else:
            legs.append(rod(foot, (x, top_y, z), foot_radius, radius, segments=20))
    return legs


def table(rng: np.random.Generator) -> Manifold:
    round_top = rng.random() < 0.35
    w = rng.uniform(0.8, 2.0)
    d = w if round_top else w * rng.uniform(0.4, 0.9)
    h = rng.uniform(0.4, 0.95)
    R = _half_diag(w, h, d)
    t = R * rng.uniform(0.06, 0.1)
    top_y = h - t
    parts = []
    if round_top:
        parts.append(rod((0, top_y, 0), (0, h, 0), w / 2, segments=64))
    else:
        parts.append(rounded_box((w, t, d), 0.45 * t, (0, h - t / 2, 0)))
    leg_r = R * rng.uniform(0.03, 0.06)
    if round_top and rng.random() < 0.6:  # pedestal: column and radial feet
        col_r = R * rng.uniform(0.06, 0.12)
        parts.append(rod((0, 0, 0), (0, top_y + t / 2, 0), col_r, segments=32))
        n_feet = int(rng.integers(3, 5))
        foot_len = w * rng.uniform(0.25, 0.45)
        for k in range(n_feet):
            a = 2 * np.pi * k / n_feet
            end = (foot_len * np.cos(a), leg_r, foot_len * np.sin(a))
            parts.append(capsule((0, leg_r, 0), end, leg_r * 1.3, segments=16))
        return union(parts)
    inset = rng.uniform(0.05, 0.15)
    if round_top:
        n_legs = int(rng.integers(3, 5))
        angles = 2 * np.pi * (np.arange(n_legs) + 0.5) / n_legs
        corners = [
            (0.5 * w * (1 - 2 * inset) * np.cos(a), 0.5 * w * (1 - 2 * inset) * np.sin(a)) for a in angles
        ]
    else:
        corners = [(sx * w * (0.5 - inset / 2), sz * d * (0.5 - inset)) for sx in (-1, 1) for sz in (-1, 1)]
    square = not round_top and rng.random() < 0.4
    splay = 0.0 if square else rng.choice([0.0, rng.uniform(0.05, 0.2)])
    foot_r = max(leg_r * rng.uniform(0.6, 1.0), 0.03 * R)
    parts += _legs(corners, top_y + 0.01, leg_r, foot_r, splay, square)
    if not round_top and rng.random() < 0.5:  # an apron frame under the top
        apron = R * rng.uniform(0.06, 0.1)
        (x0, z0), (x1, z1) = corners[0], corners[3]
        y = top_y - apron / 2 + t / 4  # sunk into the top: faces that merely touch leave slivers
        parts.append(box((x1 - x0, apron, 2 * leg_r), (0, y, z0)))
        parts.append(box((x1 - x0, apron, 2 * leg_r), (0, y, z1)))
        parts.append(box((2 * leg_r, apron, z1 - z0), (x0, y, 0)))
        parts.append(box((2 * leg_r, apron, z1 - z0), (x1, y, 0)))
    if square and rng.random() < 0.5:  # a low shelf between the legs
        parts.append(
            box((w * (1 - inset), t * 0.8, d * (1 - 2 * inset)), (0, h * rng.uniform(0.15, 0.35), 0))
        )
    return union(parts)


def chair(rng: np.random.Generator) -> Manifold:
    w, d = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6)
    seat_y = rng.uniform(0.4, 0.5)
    back_h = rng.uniform(0.3, 0.6)
    R = _half_diag(w, seat_y + back_h, d)
    t = R * rng.uniform(0.06, 0.1)
    leg_r = R * rng.uniform(0.035, 0.055)
    parts = [rounded_box((w, t, d), 0.4 * t, (0, seat_y - t / 2, 0))]
    corners = [(sx * (w / 2 - leg_r), sz * (d / 2 - leg_r)) for sx in (-1, 1) for sz in (-1, 1)]
    square = rng.random() < 0.5
    splay = 0.0 if square else rng.uniform(0.0, 0.15)
    parts += _legs(corners, seat_y - t / 2, leg_r, max(0.8 * leg_r, 0.03 * R), splay, square)
    if rng.random() < 0.5:  # side stretchers
        y = seat_y * rng.uniform(0.2, 0.4)
        for sx in (-1, 1):
            parts.append(
                rod(
                    (sx * (w / 2 - leg_r), y, -d / 2), (sx * (w / 2 - leg_r), y, d / 2), 0.03 * R, segments=12
                )
            )
    # The backrest rises from the rear edge (-Z, the chair faces +Z), leaning back by ``tilt``.
    tilt = np.radians(rng.uniform(0, 15))
    lean = np.array([0.0, np.cos(tilt), -np.sin(tilt)])
    base = np.array([0.0, seat_y - t, -d / 2 + leg_r])
    post_r = leg_r
    style = rng.choice(["panel", "slats", "rails"])
    for sx in (-1, 1):
        foot = base + [sx * (w / 2 - post_r), 0, 0]
        parts.append(rod(foot, foot + back_h * lean, post_r, segments=16))
    panel_t = max(t * 0.7, 0.06 * R)
    tilt_deg = np.degrees(tilt)
    top = base + back_h * lean

    def slab(width, height, centre):
        return box((width, height, panel_t), (0, 0, 0)).rotate((-tilt_deg, 0, 0)).translate(tuple(centre))

    if style == "panel":
        ph = back_h * rng.uniform(0.4, 0.8)
        parts.append(slab(w - 2 * post_r, ph, top - lean * ph / 2))
    else:
        parts.append(slab(w, back_h * 0.15, top - lean * back_h * 0.075))
        if style == "slats":
            n = int(rng.integers(2, 6))
            sw = max((w - 2 * post_r) / (2 * n + 1), 0.06 * R)
            for k in range(n):
                x = -w / 2 + post_r + (2 * k + 1.5) * (w - 2 * post_r) / (2 * n + 1)
                parts.append(slab(sw, back_h * 0.85, base + lean * back_h * 0.45 + [x, 0, 0]))
        else:
            for k in range(int(rng.integers(1, 4))):
                parts.append(slab(w, 0.06 * R * 1.2, base + lean * back_h * (0.35 + 0.2 * k)))
    if rng.random() < 0.35:  # armrests on posts at the front corners
        arm_y = seat_y + back_h * rng.uniform(0.35, 0.5)
        for sx in (-1, 1):
            x = sx * (w / 2 - post_r)
            parts.append(rod((x, seat_y - t, d / 2 - leg_r), (x, arm_y, d / 2 - leg_r), post_r, segments=16))
            parts.append(capsule((x, arm_y, d / 2), (x, arm_y, -d / 2 + leg_r), post_r * 1.2, segments=16))
    return union(parts)


def bench(rng: np.random.Generator) -> Manifold:
    """A round stool on 3-4 splayed legs with a foot ring, or a plank bench on legs or slab ends."""
    stool = rng.random() < 0.4
    length = rng.uniform(0.3, 0.45) if stool else rng.uniform(0.7, 1.8)
    h = rng.uniform(0.45, 0.8) if stool else rng.uniform(0.38, 0.5)
    d = length if stool else rng.uniform(0.3, 0.45)
    R = _half_diag(length, h, d)
    t = R * rng.uniform(0.07, 0.12)
    parts = []
    if stool:  # a round seat on splayed legs joined by a foot ring
        parts.append(rod((0, h - t, 0), (0, h, 0), length / 2, segments=48))
        n = int(rng.integers(3, 5))
        leg_r = R * rng.uniform(0.035, 0.055)
        ring_y = h * rng.uniform(0.25, 0.4)
        splay = rng.uniform(1.1, 1.4)
        ring = []
        for k in range(n):
            a = 2 * np.pi * k / n + np.pi / n
            top = np.array([0.3 * length * np.cos(a), h - t / 2, 0.3 * length * np.sin(a)])
            foot = np.array([top[0] * splay, 0.0, top[2] * splay])
            parts.append(rod(foot, top, leg_r, segments=16))
            ring.append(foot + (top - foot) * ring_y / top[1])
        for k in range(n):
            parts.append(rod(ring[k], ring[(k + 1) % n], 0.035 * R, segments=12))
        return union(parts)
    parts.append(rounded_box((length, t, d), 0.4 * t, (0, h - t / 2, 0)))
    if rng.random() < 0.4:  # slab ends
        slab_t = R * rng.uniform(0.06, 0.1)
        x = length / 2 - rng.uniform(0.05, 0.15) * length
        for sx in (-1, 1):
            parts.append(box((slab_t, h - t / 2, d * 0.9), (sx * x, (h - t / 2) / 2, 0)))
        parts.append(box((2 * x, 0.07 * R, 0.07 * R), (0, h * 0.3, 0)))
        return union(parts)
    leg_r = R * rng.uniform(0.035, 0.06)
    inset = rng.uniform(0.05, 0.2)
    corners = [
        (sx * length * (0.5 - inset / 2), sz * d * (0.5 - inset / 2)) for sx in (-1, 1) for sz in (-1, 1)
    ]
    square = rng.random() < 0.5
    parts += _legs(corners, h - t + 0.01, leg_r, leg_r, 0.0 if square else rng.uniform(0, 0.15), square)
    return union(parts)


def shelf(rng: np.random.Generator) -> Manifold:
    """A bookcase: side panels, 2-6 shelves, optional back panel, and some books on the shelves."""
    w, h, d = rng.uniform(0.5, 1.4), rng.uniform(0.7, 2.0), rng.uniform(0.25, 0.4)
    R = _half_diag(w, h, d)
    t = R * rng.uniform(0.06, 0.08)
    n = int(rng.integers(2, 7))
    plinth = rng.uniform(0.0, 0.1) * h
    parts = [box((t, h, d), (sx * (w - t) / 2, h / 2, 0)) for sx in (-1, 1)]
    levels = np.linspace(plinth + t / 2, h - t / 2, n + 1)
    parts += [box((w, t, d), (0, y, 0)) for y in levels]
    if plinth > t:  # a kick board, sunk into the sides and the bottom shelf (mere contact is no join)
        parts.append(box((w - t, plinth + t / 2, t), (0, (plinth + t / 2) / 2, d / 2 - t)))
    if rng.random() < 0.6:
        parts.append(box((w, h, t), (0, h / 2, -d / 2 + t / 2)))
    gap = levels[1] - levels[0] - t
    inner_w = w - 2 * t
    for y in levels[:-1]:
        x = -inner_w / 2 + 0.01 * R  # a gap: a book flush with a panel can leave a zero-width sliver
        while rng.random() < 0.75:  # a run of books, each >= 6 % R thick
            bw = R * rng.uniform(0.06, 0.12)
            if x + bw > inner_w / 2:
                break
            bh = gap * rng.uniform(0.6, 0.9)
            # Books sink a little into the board: touching faces alone would leave them separate parts.
            parts.append(box((bw, bh, d * 0.75), (x + bw / 2, y + t / 4 + bh / 2, 0)))
            x += bw + rng.uniform(0.0, 0.3) * bw
    return union(parts)


def lamp(rng: np.random.Generator) -> Manifold:
    """Table, floor and desk lamps: a base, a stem (straight or a jointed arm), and a shade."""
    kind = rng.choice(["table", "floor", "desk"])
    h = {"table": rng.uniform(0.45, 0.7), "floor": rng.uniform(1.3, 1.8), "desk": rng.uniform(0.4, 0.6)}[kind]
    R = h * 0.6
    base_r = R * rng.uniform(0.2, 0.4)
    base_h = R * rng.uniform(0.05, 0.1)
    stem_r = R * rng.uniform(0.03, 0.045)
    # A flat disc with a cone on top: a single steep frustum would end in a knife-thin rim.
    parts = [rod((0, 0, 0), (0, base_h, 0), base_r, segments=48)]
    if rng.random() < 0.5:
        parts.append(rod((0, base_h * 0.5, 0), (0, base_h * 2, 0), base_r * 0.9, base_r * 0.4, segments=48))
    if kind == "desk":
        elbow = np.array([0.0, h * 0.55, -h * rng.uniform(0.0, 0.25)])
        head = np.array([0.0, h, h * rng.uniform(0.2, 0.45)])
        parts += [
            capsule((0, base_h, 0), elbow, stem_r, segments=16),
            capsule(elbow, head, stem_r, segments=16),
        ]
        parts.append(sphere(stem_r * 2, elbow, segments=20))
        shade_r = R * rng.uniform(0.12, 0.2)
        axis = np.array([0.0, -1.0, rng.uniform(0.2, 0.8)])
        mouth = head + axis / np.linalg.norm(axis) * shade_r * 1.4
        parts.append(_shade(head, mouth, shade_r * 0.4, shade_r, 0.08 * R))
        return union(parts)
    if kind == "table" and rng.random() < 0.5:  # a turned body instead of a plain stem
        body_r = R * rng.uniform(0.1, 0.18)
        parts.append(sphere(body_r, (0, base_h + body_r * 1.2, 0), scale=(1, rng.uniform(1.0, 1.6), 1)))
    shade_h = h * rng.uniform(0.2, 0.35) if kind == "table" else h * rng.uniform(0.12, 0.2)
    # Parts overlap rather than touch: a face shared by two parts can stay behind as an internal membrane.
    parts.append(rod((0, base_h / 2, 0), (0, h - shade_h / 2, 0), stem_r, segments=16))
    bottom_r = R * rng.uniform(0.25, 0.45)
    top_r = bottom_r * rng.uniform(0.45, 1.0)
    y0 = h - shade_h
    parts.append(_shade((0, h, 0), (0, y0, 0), top_r, bottom_r, 0.08 * R))
    return union(parts)


def _shade(apex, mouth, apex_r: float, mouth_r: float, band: float) -> Manifold:
    """A solid lampshade: a frustum ending in a straight band at its mouth, so the rim is square rather
    than a knife edge that a 128^3 grid would lose."""
    apex, mouth = np.asarray(apex, dtype=np.float64), np.asarray(mouth, dtype=np.float64)
    towards_apex = (apex - mouth) / np.linalg.norm(apex - mouth)
    # The frustum reaches halfway into the band, a little narrower: solids that merely share a face
    # can leave an internal membrane in the union.
    frustum = rod(apex, mouth + towards_apex * band / 2, apex_r, 0.97 * mouth_r, segments=48)
    return union([frustum, rod(mouth + towards_apex * band, mouth, mouth_r, segments=48)])
