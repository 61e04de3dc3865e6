"""Mask → quadrilateral derivation (used for reference corners and for predictions alike)."""
import numpy as np
import pytest
from skimage.draw import polygon

from spinecore.localise.quads import quad_from_region
from spinecore.phantom import PhantomSpec, make_phantom
from spinecore.phantom.render import LABELS


def _filled(corners: np.ndarray, shape=(120, 120)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    rr, cc = polygon(corners[:, 0], corners[:, 1], shape)
    mask[rr, cc] = True
    return mask


@pytest.mark.parametrize("angle", [0.0, 12.0, -25.0, 38.0])
def test_rotated_body_corners_in_order(angle):
    # a 30 x 44 px body turned by `angle` degrees, corners AS, PS, PI, AI
    half = np.array([[-15, -22], [-15, 22], [15, 22], [15, -22]], dtype=float)
    t = np.radians(angle)
    rotation = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    truth = half @ rotation.T + 60
    down = rotation @ np.array([1.0, 0.0])
    quad = quad_from_region(_filled(truth), down=down)
    assert np.abs(quad - truth).max() < 1.5


def test_anisotropic_pixels_use_mm():
    # the same square body (30 x 30 mm) sampled at 0.5 mm rows and 1.0 mm columns
    truth_mm = np.array([[20, 20], [20, 50], [50, 50], [50, 20]], dtype=float)
    truth_px = truth_mm / [0.5, 1.0]
    quad = quad_from_region(_filled(truth_px, (120, 80)), spacing=(0.5, 1.0))
    assert np.abs(quad * [0.5, 1.0] - truth_mm).max() < 1.0


def test_empty_region_gives_none():
    assert quad_from_region(np.zeros((20, 20), dtype=bool)) is None


def test_phantom_label_corners_match_ground_truth():
    study = make_phantom(PhantomSpec(seed=5, t1=False, axial=False))
    spacing = np.array(study.series[0].geometry.spacing[1:])
    errors = []
    for vertebra in study.truth["vertebrae"]:
        for s in vertebra["slices"]:
            mask = study.labels[s["slice"]] == LABELS[vertebra["level"]]
            truth = np.array(s["corners_vox"])[:, 1:]
            quad = quad_from_region(mask, tuple(spacing))
            errors += np.linalg.norm((quad - truth) * spacing, axis=1).tolist()
    assert len(errors) > 100
    assert np.percentile(errors, 95) < 1.5, "mask-derived corners drift from the exact phantom corners"
