"""Figure families: snowman, humanoid (posable limbs), quadruped, and the head-and-shoulders bust.

The humanoid and bust echo the paper's out-of-distribution probes (§6.3: "a posed humanoid ... a
head-and-shoulders bust"); the bust is held out as an OOD category, the humanoid is a training category.
Limbs are capsules posed by forward kinematics with random joint angles.
"""

from __future__ import annotations

import numpy as np
from manifold3d import Manifold

from .primitives import box, capsule, rod, sphere, subtract, union


def _rotate(v: np.ndarray, axis, angle: float) -> np.ndarray:
    """Rodrigues' rotation of ``v`` about ``axis`` by ``angle`` radians."""
    k = np.asarray(axis, dtype=np.float64)
    k = k / np.linalg.norm(k)
    return v * np.cos(angle) + np.cross(k, v) * np.sin(angle) + k * np.dot(k, v) * (1 - np.cos(angle))


def _bend_towards(direction: np.ndarray, target, angle: float) -> np.ndarray:
    """Rotate ``direction`` by ``angle`` in the plane it spans with ``target`` (towards the target)."""
    axis = np.cross(direction, target)
    if np.linalg.norm(axis) < 1e-6:
        axis = np.array([1.0, 0.0, 0.0])
    return _rotate(direction, axis, angle)


def snowman(rng: np.random.Generator) -> Manifold:
    n_balls = int(rng.choice([2, 3, 3, 3, 4]))
    radii = [rng.uniform(0.35, 0.5)]
    for _ in range(n_balls - 1):
        radii.append(radii[-1] * rng.uniform(0.6, 0.85))
    centres = [np.array([0.0, radii[0], 0.0])]
    for below, r in zip(radii[:-1], radii[1:], strict=True):  # each ball sinks into the one below
        centres.append(centres[-1] + [0.0, below * 0.75 + r * rng.uniform(0.7, 0.85), 0.0])
    height = centres[-1][1] + radii[-1]
    arm_len = rng.uniform(0.4, 0.8) * radii[0]
    R = 0.5 * np.hypot(height, 2 * (radii[0] + arm_len))
    parts = [sphere(r, c, segments=40) for r, c in zip(radii, centres, strict=True)]
    head, head_r = centres[-1], radii[-1]
    nose_len = head_r * rng.uniform(0.5, 1.2)
    nose_dir = np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.1), 1.0])
    nose_dir /= np.linalg.norm(nose_dir)
    parts.append(
        rod(
            head + nose_dir * head_r * 0.7,
            head + nose_dir * (head_r + nose_len),
            max(0.2 * head_r, 0.04 * R),
            0.03 * R,
            segments=16,
        )
    )
    for sx in (-1, 1):
        eye = head + head_r * np.array([sx * 0.35, 0.3, 0.88])
        parts.append(sphere(max(0.12 * head_r, 0.035 * R), eye, segments=12))
    torso_i = 1 if n_balls > 2 else 0
    torso, torso_r = centres[torso_i], radii[torso_i]
    for k in range(int(rng.integers(0, 4))):
        angle = np.radians(-25 + 25 * k)
        button = torso + torso_r * np.array([0.0, np.sin(angle), np.cos(angle)])
        parts.append(sphere(0.04 * R, button, segments=12))
    if rng.random() < 0.8:  # stick arms with a fork at the end
        for sx in (-1, 1):
            raise_angle = np.radians(rng.uniform(-30, 50))
            direction = np.array([sx * np.cos(raise_angle), np.sin(raise_angle), rng.uniform(-0.3, 0.3)])
            start = torso + direction / np.linalg.norm(direction) * torso_r * 0.7
            end = start + direction * (arm_len + torso_r * 0.3)
            parts.append(capsule(start, end, 0.03 * R, segments=12))
            twig = _rotate(direction, (0, 0, 1), sx * np.radians(35))
            parts.append(
                capsule(
                    end - direction * 0.25 * arm_len,
                    end - direction * 0.25 * arm_len + twig * 0.3 * arm_len,
                    0.03 * R,
                    segments=12,
                )
            )
    if rng.random() < 0.6:  # a hat: top hat or bucket
        hat_y = head[1] + head_r * 0.75
        brim_r = head_r * rng.uniform(0.9, 1.3)
        parts.append(rod((0, hat_y, 0), (0, hat_y + 0.06 * R, 0), brim_r, segments=40))
        crown_h = head_r * rng.uniform(0.5, 1.4)
        parts.append(
            rod(
                (0, hat_y, 0),
                (0, hat_y + crown_h, 0),
                head_r * 0.65,
                head_r * rng.uniform(0.5, 0.75),
                segments=40,
            )
        )
    return union(parts)


def humanoid(rng: np.random.Generator) -> Manifold:
    """A figure with random proportions and joint angles (shoulders, elbows, hips, knees, head)."""
    H = rng.uniform(1.5, 1.9)
    R = 0.7 * H  # arms may stretch the bounding box to about H x H
    limb = 0.03 * R
    hip_y = H * rng.uniform(0.47, 0.53)
    shoulder_y = H * rng.uniform(0.8, 0.84)
    shoulder_w, hip_w = H * rng.uniform(0.1, 0.13), H * rng.uniform(0.07, 0.1)
    chest = sphere(1.0, (0, shoulder_y - 0.07 * H, 0), scale=(shoulder_w * 1.1, 0.12 * H, 0.08 * H))
    pelvis = sphere(1.0, (0, hip_y + 0.04 * H, 0), scale=(hip_w * 1.4, 0.09 * H, 0.07 * H))
    parts = [Manifold.batch_hull([chest, pelvis])]
    head_r = H * rng.uniform(0.055, 0.07)
    neck_top = np.array([0.0, shoulder_y + 0.05 * H, 0.0])
    parts.append(capsule((0, shoulder_y - 0.02 * H, 0), neck_top, max(0.35 * head_r, limb)))
    head_dir = _rotate(np.array([0.0, 1.0, 0.0]), (1, 0, 0), np.radians(rng.uniform(-20, 20)))
    head_c = neck_top + head_dir * head_r * 1.1
    parts.append(sphere(head_r, head_c, scale=(0.85, 1.1, 0.95), segments=32))
    parts.append(sphere(0.2 * head_r, head_c + np.array([0, -0.1, 0.9]) * head_r, segments=12))  # nose
    upper_arm, forearm = H * rng.uniform(0.16, 0.19), H * rng.uniform(0.14, 0.17)
    thigh, shin = H * rng.uniform(0.23, 0.26), H * rng.uniform(0.22, 0.25)
    arm_r, leg_r = max(H * rng.uniform(0.025, 0.035), limb), max(H * rng.uniform(0.04, 0.055), limb)
    forward = np.array([0.0, 0.0, 1.0])
    for side in (-1, 1):
        shoulder = np.array([side * shoulder_w, shoulder_y, 0.0])
        down = np.array([0.0, -1.0, 0.0])
        upper_dir = _rotate(down, (0, 0, 1), side * np.radians(rng.uniform(5, 170)))
        upper_dir = _rotate(upper_dir, (1, 0, 0), -np.radians(rng.uniform(-30, 80)))
        elbow = shoulder + upper_dir * upper_arm
        fore_dir = _bend_towards(upper_dir, forward, np.radians(rng.uniform(0, 110)))
        wrist = elbow + fore_dir * forearm
        parts += [
            capsule(shoulder, elbow, arm_r * 1.15, arm_r, segments=16),
            capsule(elbow, wrist, arm_r, segments=16),
        ]
        parts.append(sphere(arm_r * 1.5, wrist + fore_dir * arm_r, segments=16))  # hand
        hip = np.array([side * hip_w, hip_y, 0.0])
        thigh_dir = _rotate(down, (0, 0, 1), side * np.radians(rng.uniform(0, 25)))
        thigh_dir = _rotate(thigh_dir, (1, 0, 0), -np.radians(rng.uniform(-25, 70)))
        knee = hip + thigh_dir * thigh
        shin_dir = _bend_towards(thigh_dir, -forward, np.radians(rng.uniform(0, 90)))
        ankle = knee + shin_dir * shin
        parts += [
            capsule(hip, knee, leg_r * 1.2, leg_r, segments=16),
            capsule(knee, ankle, leg_r, 0.8 * leg_r, segments=16),
        ]
        foot_len = H * 0.13
        parts.append(
            capsule(ankle, ankle + np.array([0.0, -0.3 * leg_r, foot_len]), 0.8 * leg_r, segments=16)
        )
    return union(parts)


def quadruped(rng: np.random.Generator) -> Manifold:
    """A four-legged animal facing +Z: body, posed legs, neck and head (short dog to long giraffe), tail."""
    L = rng.uniform(0.8, 1.6)
    leg_len = L * rng.uniform(0.45, 0.9)
    neck_len = L * rng.choice([rng.uniform(0.15, 0.35), rng.uniform(0.5, 0.9)])
    R = 0.5 * np.hypot(L * 1.4, leg_len + neck_len + 0.3 * L)
    chest_r, hip_r = L * rng.uniform(0.16, 0.24), L * rng.uniform(0.14, 0.22)
    body_y = leg_len + chest_r * 0.5
    chest = np.array([0.0, body_y, L * 0.35])
    hips = np.array([0.0, body_y + rng.uniform(-0.05, 0.05) * L, -L * 0.35])
    parts = [
        Manifold.batch_hull(
            [sphere(chest_r, chest, scale=(0.85, 1, 1)), sphere(hip_r, hips, scale=(0.85, 1, 1))]
        )
    ]
    leg_r = max(L * rng.uniform(0.035, 0.06), 0.03 * R)
    for end, body_r, knee_sign in ((chest, chest_r, -1.0), (hips, hip_r, 1.0)):
        for side in (-1, 1):
            top = end + np.array([side * body_r * 0.55, -body_r * 0.3, 0.0])
            swing = np.radians(rng.uniform(-25, 25))
            upper_dir = _rotate(np.array([0.0, -1.0, 0.0]), (1, 0, 0), swing)
            upper_len = (top[1] - leg_r) * 0.5 / 0.95
            knee = top + upper_dir * upper_len
            lower_dir = _rotate(
                np.array([0.0, -1.0, 0.0]), (1, 0, 0), knee_sign * np.radians(rng.uniform(0, 20))
            )
            foot = knee + lower_dir * upper_len
            parts += [
                capsule(top, knee, leg_r * 1.3, leg_r, segments=16),
                capsule(knee, foot, leg_r, segments=16),
            ]
    neck_dir = _rotate(np.array([0.0, 0.0, 1.0]), (1, 0, 0), -np.radians(rng.uniform(30, 75)))
    neck_base = chest + np.array([0.0, chest_r * 0.3, chest_r * 0.5])
    head = neck_base + neck_dir * neck_len
    neck_r = max(chest_r * rng.uniform(0.3, 0.5), 0.03 * R)
    parts.append(capsule(neck_base, head, neck_r * 1.3, neck_r, segments=20))
    head_r = max(L * rng.uniform(0.08, 0.13), neck_r * 1.1)
    parts.append(sphere(head_r, head, segments=24))
    snout = head + _rotate(
        np.array([0.0, 0.0, 1.0]), (1, 0, 0), np.radians(rng.uniform(0, 40))
    ) * head_r * rng.uniform(0.9, 1.8)
    parts.append(capsule(head, snout, head_r * 0.6, max(head_r * 0.4, 0.03 * R), segments=20))
    ear_h = head_r * rng.uniform(0.5, 1.2)
    for side in (-1, 1):
        base = head + np.array([side * head_r * 0.5, head_r * 0.6, -head_r * 0.2])
        parts.append(
            rod(base, base + np.array([side * 0.3, 1.0, -0.2]) * ear_h, head_r * 0.35, 0.03 * R, segments=12)
        )
    tail = [hips + np.array([0.0, hip_r * 0.3, -hip_r * 0.8])]
    curl = rng.uniform(-1.2, 1.2)
    seg_len = L * rng.uniform(0.08, 0.2)
    direction = _rotate(np.array([0.0, 0.0, -1.0]), (1, 0, 0), np.radians(rng.uniform(-60, 40)))
    for _ in range(3):
        tail.append(tail[-1] + direction * seg_len)
        direction = _rotate(direction, (1, 0, 0), curl * 0.5)
    tail_r = max(L * 0.03, 0.03 * R)
    parts += [capsule(a, b, tail_r, segments=12) for a, b in zip(tail[:-1], tail[1:], strict=True)]
    return union(parts)


def bust(rng: np.random.Generator) -> Manifold:
    """A head-and-shoulders bust on a plinth: the paper's OOD 'head' probe (§6.3); held out from training."""
    head_r = rng.uniform(0.1, 0.13)
    shoulder_w = head_r * rng.uniform(1.8, 2.5)
    plinth_h = head_r * rng.uniform(0.8, 1.5)
    R = 0.5 * np.hypot(2 * shoulder_w, plinth_h + 5 * head_r)
    chest_h = head_r * rng.uniform(1.4, 2.0)
    chest_y = plinth_h + chest_h * rng.uniform(0.0, 0.3)
    # The plinth is wider than the torso's cut, so the torso's foot sits inside it (no thin skirt).
    half_x, half_z = 1.1 * shoulder_w, 1.1 * 1.2 * head_r
    if rng.random() < 0.5:
        parts = [box((2 * half_x, plinth_h, 2 * half_z), (0, plinth_h / 2, 0))]
    else:
        plinth = rod((0, 0, 0), (0, plinth_h, 0), half_x, segments=48)
        parts = [plinth.scale((1.0, 1.0, half_z / half_x))]
    torso = sphere(1.0, (0, chest_y, 0), scale=(shoulder_w, chest_h, head_r * 1.2), segments=48)
    parts.append(torso.trim_by_plane((0.0, 1.0, 0.0), plinth_h * 0.8))
    neck_top = np.array([0.0, chest_y + chest_h + head_r * 0.5, head_r * 0.1])
    parts.append(rod((0, chest_y + chest_h * 0.6, 0), neck_top, head_r * rng.uniform(0.4, 0.55), segments=24))
    # Head frame: turned about Y and nodded about X, so the face looks somewhere around +Z.
    yaw, pitch = np.radians(rng.uniform(-35, 35)), np.radians(rng.uniform(-15, 15))

    def local(p):
        return (
            neck_top
            + np.array([0.0, head_r * 0.9, 0.0])
            + _rotate(_rotate(np.asarray(p, float), (1, 0, 0), pitch), (0, 1, 0), yaw)
        )

    skull = sphere(head_r, local((0, 0.1 * head_r, 0)), scale=(0.85, 1.05, 1.0), segments=40)
    jaw = sphere(head_r * 0.6, local((0, -0.55 * head_r, 0.35 * head_r)), scale=(1.1, 0.8, 1.0), segments=24)
    head = Manifold.batch_hull([skull, jaw])
    sockets = [
        sphere(head_r * 0.2, local((sx * 0.35 * head_r, 0.1 * head_r, 0.95 * head_r)), segments=16)
        for sx in (-1, 1)
    ]
    head = subtract(head, sockets)
    nose = capsule(
        local((0, 0.05 * head_r, 0.9 * head_r)),
        local((0, -0.25 * head_r, 1.12 * head_r)),
        max(0.12 * head_r, 0.03 * R),
        segments=12,
    )
    ears = [
        sphere(head_r * 0.28, local((sx * 0.85 * head_r, 0.0, 0.0)), scale=(0.4, 1.0, 0.7), segments=16)
        for sx in (-1, 1)
    ]
    parts += [head, nose, *ears]
    return union(parts)
