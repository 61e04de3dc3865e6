"""Subject identification (spinecore.evaluate.pretrain): pairs of structures and pairs of scans."""
import numpy as np
import pytest

from spinecore.data.pairs import StructureSet, all_pairs
from spinecore.evaluate.pretrain import best_threshold, study_distances
from spinecore.grade.siamese import Kind


def _set() -> StructureSet:
    """Two subjects, each a T1 and a T2 scan, each scan two levels (volumes unused here)."""
    rows = [(s, q, level) for level in ("L4", "L5") for s in "ab" for q in ("t1", "t2")]
    return StructureSet(Kind.BODY, np.zeros((len(rows), 1, 2, 2), np.uint8), np.array([r[0] for r in rows]),
                        np.array([f"{r[0]}_{r[1]}" for r in rows]), np.array([r[1] for r in rows]),
                        np.array([r[2] for r in rows]))


def test_scan_pairs_average_their_levels_distances():
    data = _set()
    first, second, same = all_pairs(data)
    assert len(first) == 8 and same.sum() == 4  # per level: a_t1–a_t2, b_t1–b_t2 and two across subjects
    # one subject: 0.1 at L4, 0.3 at L5; two subjects: 0.5 and 0.9
    level = data.levels[first]
    distances = np.where(same, np.where(level == "L4", 0.1, 0.3), np.where(level == "L4", 0.5, 0.9))
    means, one_subject = study_distances(distances, data)
    assert sorted(zip(one_subject.tolist(), means.round(6).tolist())) == [(False, 0.7), (False, 0.7), (True, 0.2),
                                                                          (True, 0.2)]
    assert 0.2 <= best_threshold(means, one_subject) <= 0.7


def test_best_threshold_maximises_youdens_j():
    # separable: the largest same-subject distance; one same pair beyond the different ones moves it not
    assert best_threshold(np.array([0.1, 0.2, 0.5, 0.6]), np.array([True, True, False, False])) == pytest.approx(0.2)
    assert best_threshold(np.array([0.1, 0.2, 0.5, 0.6, 0.9]),
                          np.array([True, True, False, False, True])) == pytest.approx(0.2)
