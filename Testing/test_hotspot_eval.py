"""Phantom lesion cases for hotspot evaluation: the true lesion lands in its disc volume."""
import numpy as np

from spinecore.train.hotspot_eval import LESION_CASES, lesion_cases


def test_each_lesion_case_has_true_boxes_in_its_disc_volume():
    cases = lesion_cases([901])
    assert sorted(c.lesion for c in cases) == sorted(LESION_CASES)
    for case in cases:
        boxed = [b for b in case.reference if b is not None]
        assert boxed, case.lesion
        rows = np.array([[b[0], b[2]] for b in boxed])
        if case.lesion == "endplate_defect":  # the upper vertebra's lower endplate: upper half
            assert rows.mean() < 56
        if case.lesion == "marrow":  # the lower vertebra's marrow: lower half
            assert rows.mean() > 56
        if case.lesion in ("stenosis", "herniation"):  # behind the disc: posterior (right) half
            assert np.mean([[b[1], b[3]] for b in boxed]) > 112
