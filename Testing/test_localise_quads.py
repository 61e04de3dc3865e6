"""Mask → quadrilateral derivation (used for reference corners and for predictions alike)."""
import numpy as np
import pytest
from scipy import ndimage
from skimage.draw import polygon
from skimage.morphology import disk

from spinecore.localise.quads import CORNER_RESTORE_MM, outline, quad_from_region
from spinecore.phantom import PhantomSpec, make_phantom
from spinecore.phantom.render import LABELS

from conftest import in_full_view


def _filled(corners: np.ndarray, shape=(120, 120)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    rr, cc = polygon(corners[:, 0], corners[:, 1], shape)
    mask[rr, cc] = True
    return mask


def _turned_body(angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Corners (AS, PS, PI, AI; pixel indices) of a 30 x 44 px body turned by ``angle`` degrees, and
    its feet-ward direction."""
    half = np.array([[-15, -22], [-15, 22], [15, 22], [15, -22]], dtype=float)
    t = np.radians(angle)
    rotation = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return half @ rotation.T + 60, rotation @ np.array([1.0, 0.0])


def _soft(corners: np.ndarray, blur_px: float, supersample: int = 8) -> np.ndarray:
    """The share of each pixel the polygon covers (from a ``supersample``-times finer mask),
    blurred by a Gaussian of ``blur_px``: a probability map with rounded corners."""
    fine = _filled((corners + 0.5) * supersample - 0.5, (120 * supersample, 120 * supersample))
    cover = fine.reshape(120, supersample, 120, supersample).mean(axis=(1, 3))
    return ndimage.gaussian_filter(cover, blur_px)


@pytest.mark.parametrize("angle", [0.0, 12.0, -25.0, 38.0])
def test_rotated_body_corners_in_order(angle):
    truth, down = _turned_body(angle)
    quad = quad_from_region(_filled(truth), down=down)
    assert np.abs(quad - truth).max() < 1.5


@pytest.mark.parametrize("angle", [0.0, 12.0, -25.0])
def test_soft_rounded_outline_keeps_its_sharp_corners(angle):
    truth, down = _turned_body(angle)
    soft = _soft(truth, 1.5)
    quad = quad_from_region(soft, down=down)
    assert np.linalg.norm(quad - truth, axis=1).max() < 0.2
    # the rounded 0.5 outline itself passes > 1 px inside every corner
    nearest = [np.linalg.norm(outline(soft) - c, axis=1).min() for c in truth]
    assert min(nearest) > 1.0


def test_truly_rounded_rim_moves_its_corner_at_most_the_restore_distance():
    # a 60 x 80 px body whose corners are rounds of radius 6 px (a real body's rim, not blur)
    square = np.zeros((120, 120), dtype=bool)
    square[30:90, 20:100] = True
    rounded = ndimage.binary_opening(square, disk(6))
    sharp = np.array([[29.5, 19.5], [29.5, 99.5], [89.5, 99.5], [89.5, 19.5]])
    quad = quad_from_region(rounded)
    on_outline = np.array([outline(rounded)[np.argmin(np.linalg.norm(outline(rounded) - q, axis=1))] for q in quad])
    assert np.linalg.norm(quad - on_outline, axis=1).max() <= CORNER_RESTORE_MM + 1e-6
    assert np.linalg.norm(quad - sharp, axis=1).min() > 1.0


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
    for vertebra in in_full_view(study.truth["vertebrae"]):
        for s in vertebra["slices"]:
            mask = study.labels[s["slice"]] == LABELS[vertebra["level"]]
            truth = np.array(s["corners_vox"])[:, 1:]
            quad = quad_from_region(mask, tuple(spacing))
            errors += np.linalg.norm((quad - truth) * spacing, axis=1).tolist()
    assert len(errors) > 100
    assert np.percentile(errors, 95) < 1.5, "mask-derived corners drift from the exact phantom corners"
