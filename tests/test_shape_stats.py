"""eval.metrics.shape_statistics against closed forms (the OOD shape statistics of eval-gen, §6.3)."""

import math

import numpy as np
import trimesh

from img2sdf.eval.metrics import shape_statistics


def test_aspect_genus_and_volume_of_known_solids():
    box = shape_statistics(trimesh.creation.box((2.0, 1.0, 0.5)))
    assert box == {"aspect": 4.0, "genus": 0.0, "volume": 1.0}
    torus = shape_statistics(trimesh.creation.torus(0.5, 0.2, major_sections=64, minor_sections=32))
    assert torus["genus"] == 1.0 and math.isclose(torus["aspect"], 1.4 / 0.4, rel_tol=1e-3)
    assert math.isclose(torus["volume"], 2 * math.pi**2 * 0.5 * 0.2**2, rel_tol=0.02)
    pair = trimesh.util.concatenate([trimesh.creation.torus(0.5, 0.1),
                                     trimesh.creation.torus(0.5, 0.1).apply_translation((3, 0, 0))])
    assert shape_statistics(pair)["genus"] == 2.0  # handles add over components
    sphere = shape_statistics(trimesh.creation.icosphere(4, 0.6))
    assert sphere["genus"] == 0.0 and math.isclose(sphere["volume"], 4 / 3 * math.pi * 0.6**3, rel_tol=0.01)


def test_an_open_mesh_has_no_volume_or_genus():
    sphere = trimesh.creation.icosphere(3)
    holed = trimesh.Trimesh(sphere.vertices, sphere.faces[10:])
    stats = shape_statistics(holed)
    assert np.isnan(stats["genus"]) and np.isnan(stats["volume"])
    assert math.isclose(stats["aspect"], 1, abs_tol=0.1)
