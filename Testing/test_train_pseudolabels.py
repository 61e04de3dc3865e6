"""Pseudo-labels for the localiser (spinecore.train.pseudolabels) on phantom T1/T2 pairs."""
import numpy as np
import pytest
from scipy import ndimage

from spinecore.data.references import IGNORE
from spinecore.localise import Localiser
from spinecore.localise.localiser import spine_from_maps
from spinecore.phantom import PhantomSpec, make_phantom
from spinecore.train.pseudolabels import (
    ALIGNED_NCC,
    GRADIENT_SIGMA_MM,
    NEGATIVE,
    POSITIVE,
    _pairs_checked,
    _Read,
    gradient_correlation,
    pseudo_target,
)


@pytest.fixture(scope="module")
def phantom_reads():
    """The bundled localiser's reads of one phantom's sagittal T1 and T2 (one grid)."""
    study = make_phantom(PhantomSpec(seed=7, axial=False))
    localiser = Localiser.load()
    reads = {}
    for sequence in ("t1", "t2"):
        series = study.get(f"sag_{sequence}").to_series(f"phantom/{sequence}")
        grid, prob = localiser.probabilities(series)
        reads[sequence] = _Read(f"7_{sequence}", series, spine_from_maps(series, grid, prob), grid, prob, True)
    return reads


def test_gradient_correlation_tells_aligned_from_shifted(phantom_reads):
    series = phantom_reads["t1"].series
    t1, t2 = (phantom_reads[s].series.array[series.shape[0] // 2] for s in ("t1", "t2"))
    sigma = GRADIENT_SIGMA_MM / series.spacing[1]
    assert gradient_correlation(t2, t2, sigma) == pytest.approx(1.0)
    assert gradient_correlation(t1, t2, sigma) >= ALIGNED_NCC
    assert gradient_correlation(ndimage.shift(t1, (40, 0), order=1), t2, sigma) < ALIGNED_NCC


def test_target_keeps_confident_pixels_inside_the_chain(phantom_reads):
    read = phantom_reads["t2"]
    target = pseudo_target(read)
    assert target.shape == read.prob.shape and set(np.unique(target)) <= {0, 1, IGNORE}
    known = target != IGNORE
    assert np.all(target[known & (read.prob >= POSITIVE)] == 1) and np.all(target[known & (read.prob <= NEGATIVE)] == 0)
    assert np.all(target[(read.prob > NEGATIVE) & (read.prob < POSITIVE)] == IGNORE)
    rows = np.flatnonzero(known.any(axis=(0, 1, 3)))
    top_body = min(read.grid.from_scan(s.corners_vox[:, 1:])[:, 0].min()
                   for v in read.spine.vertebrae for s in v.slices)
    assert rows.min() >= top_body - 5 and (target[:, 0] == 1).sum() > 1000


def test_consistent_t2_teaches_its_aligned_t1(phantom_reads):
    t1, t2 = phantom_reads["t1"], phantom_reads["t2"]
    t1.consistent = False
    try:
        scans = {s.name: s for s in _pairs_checked([t1, t2])}
    finally:
        t1.consistent = True
    assert set(scans) == {"7_t2", "7_t1<-7_t2"}
    taught = scans["7_t1<-7_t2"]
    assert np.array_equal(taught.target, pseudo_target(t2)) and not np.array_equal(taught.image, scans["7_t2"].image)
    both = {s.name for s in _pairs_checked([t1, t2])}
    assert both == {"7_t1", "7_t2"}
