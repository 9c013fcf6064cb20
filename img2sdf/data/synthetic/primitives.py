"""Solid building blocks for the procedural shape families, on top of manifold3d.

Every helper returns a ``manifold3d.Manifold`` (closed, oriented, 2-manifold by construction), so families
combine them with exact booleans and the result stays watertight. World convention: Y is up, the front
faces +Z. ``SEG`` is the default tessellation of round parts (segments around a full circle).
"""

from __future__ import annotations

import numpy as np
import trimesh
from manifold3d import CrossSection, JoinType, Manifold, Mesh, OpType

SEG = 32


def union(parts: list[Manifold]) -> Manifold:
    return Manifold.batch_boolean(parts, OpType.Add)


def subtract(base: Manifold, cutters: list[Manifold]) -> Manifold:
    return Manifold.batch_boolean([base, *cutters], OpType.Subtract)


def to_trimesh(solid: Manifold) -> trimesh.Trimesh:
    mesh = solid.to_mesh()
    return trimesh.Trimesh(np.asarray(mesh.vert_properties)[:, :3], np.asarray(mesh.tri_verts), process=False)


def box(size, center=(0.0, 0.0, 0.0)) -> Manifold:
    return Manifold.cube(tuple(float(s) for s in size), center=True).translate(
        tuple(float(c) for c in center)
    )


def sphere(radius: float, center=(0.0, 0.0, 0.0), scale=(1.0, 1.0, 1.0), segments: int = SEG) -> Manifold:
    """A sphere, or an ellipsoid when ``scale`` is not uniform."""
    solid = Manifold.sphere(float(radius), segments).scale(tuple(float(s) for s in scale))
    return solid.translate(tuple(float(c) for c in center))


def _frame(direction: np.ndarray) -> np.ndarray:
    """A rotation whose third column is the unit ``direction`` (maps local +Z onto it)."""
    z = direction / np.linalg.norm(direction)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1)


def _place(solid: Manifold, rotation: np.ndarray, origin) -> Manifold:
    return solid.transform(np.hstack([rotation, np.asarray(origin, dtype=np.float64).reshape(3, 1)]))


def rod(a, b, radius: float, radius_b: float | None = None, segments: int = SEG) -> Manifold:
    """A cylinder (or truncated cone when ``radius_b`` is given) from point ``a`` to point ``b``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    length = float(np.linalg.norm(b - a))
    r_b = radius if radius_b is None else radius_b
    solid = Manifold.cylinder(length, float(radius), float(r_b), segments)
    return _place(solid, _frame(b - a), a)


def capsule(a, b, radius: float, radius_b: float | None = None, segments: int = SEG) -> Manifold:
    """The convex hull of two spheres: a limb segment with rounded ends (tapered if ``radius_b`` given)."""
    r_b = radius if radius_b is None else radius_b
    return Manifold.batch_hull([sphere(radius, a, segments=segments), sphere(r_b, b, segments=segments)])


def torus(ring_radius: float, tube_radius: float, center=(0.0, 0.0, 0.0), segments: int = SEG) -> Manifold:
    """A torus around the Z axis (lying in the XY plane)."""
    section = CrossSection.circle(float(tube_radius), 20).translate((float(ring_radius), 0.0))
    return Manifold.revolve(section, segments).translate(tuple(float(c) for c in center))


def hull(points) -> Manifold:
    return Manifold.hull_points(np.asarray(points, dtype=np.float64))


def rounded_box(size, radius: float, center=(0.0, 0.0, 0.0), segments: int = 16) -> Manifold:
    """A box with its edges rounded to ``radius``: the hull of eight corner spheres."""
    half = np.asarray(size, dtype=np.float64) / 2.0 - radius
    corners = [np.asarray(center) + half * (2 * np.array(s) - 1) for s in np.ndindex(2, 2, 2)]
    return Manifold.batch_hull([sphere(radius, c, segments=segments) for c in corners])


def _ccw(polygon) -> CrossSection:
    """A cross-section from one polygon in either winding (the default fill rule drops clockwise loops)."""
    pts = np.asarray(polygon, dtype=np.float64)
    signed_area = np.sum(pts[:, 0] * np.roll(pts[:, 1], -1) - np.roll(pts[:, 0], -1) * pts[:, 1])
    return CrossSection([pts if signed_area > 0 else pts[::-1]])


def revolve_y(profile, segments: int = 48, degrees: float = 360.0) -> Manifold:
    """Surface of revolution about the Y axis of a profile: (radius, height) points or a CrossSection."""
    section = profile if isinstance(profile, CrossSection) else _ccw(profile)
    solid = Manifold.revolve(section, segments, degrees)
    # revolve() spins about the cross-section's Y axis and maps it to world Z; turn Z back to Y (up).
    return solid.rotate((-90.0, 0.0, 0.0))


def hollow_revolve_y(outline, wall: float, depth: float, segments: int = 64) -> Manifold:
    """A vessel: the outer half-profile ``outline`` ((r, y) from foot to lip) revolved about Y, with a
    cavity open at the lip, ``depth`` deep, whose walls are exactly ``wall`` thick along the normal.

    The cavity is the outline offset inwards (Clipper2 via manifold3d), so sloped walls keep their full
    thickness; the outline is mirrored across the axis first, otherwise the offset would also shrink
    away from the axis and leave a central column.
    """
    pts = np.asarray([p for p in outline if p[0] > 0], dtype=np.float64)
    mirrored = pts[::-1] * [-1.0, 1.0]
    lip_r, lip_y = pts[-1]
    span = 4.0 * (float(np.abs(pts).max()) + wall)
    raised = np.vstack([pts, [[lip_r, lip_y + span]], [[-lip_r, lip_y + span]], mirrored])
    below_rim = CrossSection.square((2 * span, 2 * span)).translate((-span, lip_y - depth))
    cavity = _ccw(raised).offset(-wall, JoinType.Round) ^ below_rim
    section = _ccw(np.vstack([pts, mirrored])) - cavity
    # Round the convex corners (an opening): a flared lip cut flat would end in a knife edge.
    rounding = 0.45 * wall
    section = section.offset(-rounding, JoinType.Round).offset(rounding, JoinType.Round)
    # Clipper leaves near-duplicate vertices; revolved, they become needle triangles with unstable normals.
    section = section.simplify(0.02 * wall)
    return revolve_y(section, segments)


def extrude_polygon(polygon, depth: float, axis: str = "z") -> Manifold:
    """Extrude a 2-D polygon symmetrically to ``depth`` along ``axis``.

    The polygon's (u, v) map to (x, y) for axis z, to (z, y) for axis x and to (x, z) for axis y, so
    side silhouettes are drawn as (forward, up) and top views as (right, forward).
    """
    solid = Manifold.extrude(_ccw(polygon), float(depth))
    solid = solid.translate((0.0, 0.0, -depth / 2.0))
    if axis == "x":
        return solid.rotate((0.0, -90.0, 0.0))
    if axis == "y":
        return solid.rotate((90.0, 0.0, 0.0))
    return solid


def sweep(curve, radius: float, closed: bool, sides: int = 16) -> Manifold:
    """A tube of circular section swept along a polyline (a torus-knot strand, a coil spring).

    Frames are parallel-transported along the curve; on a closed curve the leftover twist (holonomy) is
    spread evenly so the last ring joins the first without a seam. Open tubes get flat end caps. The
    caller keeps ``radius`` below the curve's self-clearance, otherwise the tube would self-intersect.
    """
    pts = np.asarray(curve, dtype=np.float64)
    n = len(pts)
    tangents = (np.roll(pts, -1, 0) - np.roll(pts, 1, 0)) if closed else np.gradient(pts, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    normals = np.empty_like(pts)
    normals[0] = _frame(tangents[0])[:, 0]
    for i in range(1, n):
        v = normals[i - 1] - tangents[i] * np.dot(normals[i - 1], tangents[i])
        normals[i] = v / np.linalg.norm(v)
    binormals = np.cross(tangents, normals)
    if closed:
        end = normals[-1] - tangents[0] * np.dot(normals[-1], tangents[0])
        twist = np.arctan2(np.dot(end, binormals[0]), np.dot(end, normals[0]))
        # Spread the closing twist over the n segments (the last one joins ring n-1 to ring 0).
        angles = -twist * np.arange(n) / n
        c, s = np.cos(angles)[:, None], np.sin(angles)[:, None]
        normals, binormals = c * normals + s * binormals, c * binormals - s * normals
    phi = 2.0 * np.pi * np.arange(sides) / sides
    rings = pts[:, None, :] + radius * (
        np.cos(phi)[None, :, None] * normals[:, None, :] + np.sin(phi)[None, :, None] * binormals[:, None, :]
    )
    verts = rings.reshape(-1, 3)
    idx = np.arange(n * sides).reshape(n, sides)
    nxt_ring = np.roll(idx, -1, 0) if closed else idx[1:]
    cur = idx if closed else idx[:-1]
    a, b = cur, np.roll(cur, -1, 1)
    c_, d = nxt_ring, np.roll(nxt_ring, -1, 1)
    faces = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c_], -1).reshape(-1, 3)])
    if not closed:
        centres = len(verts) + np.arange(2)
        verts = np.vstack([verts, pts[0], pts[-1]])
        first, last = idx[0], idx[-1]
        cap0 = np.stack([np.full(sides, centres[0]), np.roll(first, -1), first], -1)
        cap1 = np.stack([np.full(sides, centres[1]), last, np.roll(last, -1)], -1)
        faces = np.concatenate([faces, cap0, cap1])
    tri = trimesh.Trimesh(verts, faces, process=False)
    if tri.volume < 0:
        faces = faces[:, ::-1]
    solid = Manifold(Mesh(vert_properties=verts.astype(np.float32), tri_verts=faces.astype(np.uint32)))
    if solid.is_empty():
        raise ValueError(f"sweep produced an invalid tube ({solid.status()})")
    return solid
