"""Subject identification (spinecore.evaluate.pretrain): pairs of structures and pairs of scans."""
import numpy as np
import pytest

from spinecore.data.pairs import StructureSet, all_pairs
from spinecore.evaluate.pretrain import best_threshold, called_right, sequence_pair_auc, study_distances
from spinecore.grade.siamese import Kind
from spinecore.report.pretrain import pretrain_table


def _set(cut: tuple[str, ...] = ()) -> StructureSet:
    """Two subjects, each a T1 and a T2 scan, each scan two levels (volumes unused here); the scans
    ``cut`` show L5 only in part."""
    rows = [(s, q, level) for level in ("L4", "L5") for s in "ab" for q in ("t1", "t2")]
    return StructureSet(Kind.BODY, np.zeros((len(rows), 1, 2, 2), np.uint8), np.array([r[0] for r in rows]),
                        np.array([f"{r[0]}_{r[1]}" for r in rows]), np.array([r[1] for r in rows]),
                        np.array([r[2] for r in rows]),
                        np.array([not (level == "L5" and f"{s}_{q}" in cut) for s, q, level in rows]))


def test_scan_pairs_average_their_levels_distances():
    data = _set()
    pairs = all_pairs(data)
    first, second, same = pairs
    assert len(first) == 8 and same.sum() == 4  # per level: a_t1–a_t2, b_t1–b_t2 and two across subjects
    # one subject: 0.1 at L4, 0.3 at L5; two subjects: 0.5 and 0.9
    level = data.levels[first]
    distances = np.where(same, np.where(level == "L4", 0.1, 0.3), np.where(level == "L4", 0.5, 0.9))
    means, one_subject = study_distances(distances, data, pairs)
    assert sorted(zip(one_subject.tolist(), means.round(6).tolist())) == [(False, 0.7), (False, 0.7), (True, 0.2),
                                                                          (True, 0.2)]
    assert 0.2 <= best_threshold(means, one_subject) <= 0.7


def test_scan_pairs_leave_out_levels_not_seen_whole():
    def scan_means(data: StructureSet) -> list[tuple[bool, float]]:
        pairs = all_pairs(data)
        level = data.levels[pairs.first]
        distances = np.where(pairs.same, np.where(level == "L4", 0.1, 0.3), np.where(level == "L4", 0.5, 0.9))
        means, one_subject = study_distances(distances, data, pairs)
        return sorted(zip(one_subject.tolist(), means.round(6).tolist()))

    # a_t1 shows L5 cut by the view: its two scan pairs average L4 alone
    assert scan_means(_set(cut=("a_t1",))) == [(False, 0.5), (False, 0.7), (True, 0.1), (True, 0.2)]
    # nothing of subject a seen whole: its scan pairs fall back to every level
    nothing_whole = _set()
    nothing_whole.whole[nothing_whole.subjects == "a"] = False
    assert scan_means(nothing_whole) == [(False, 0.7), (False, 0.7), (True, 0.2), (True, 0.2)]


def test_best_threshold_maximises_youdens_j():
    # separable: the largest same-subject distance; one same pair beyond the different ones moves it not
    assert best_threshold(np.array([0.1, 0.2, 0.5, 0.6]), np.array([True, True, False, False])) == pytest.approx(0.2)
    assert best_threshold(np.array([0.1, 0.2, 0.5, 0.6, 0.9]),
                          np.array([True, True, False, False, True])) == pytest.approx(0.2)


def test_one_and_two_subject_pairs_are_scored_apart_at_the_threshold():
    distances = np.array([0.1, 0.3, 0.2, 0.5, 0.6, 0.7])
    same = np.array([True, True, False, False, False, False])
    assert called_right(distances, same, 0.25) == (0.5, 0.75)
    assert called_right(distances[~same], same[~same], 0.25) == (None, 0.75)


def test_each_pair_of_sequences_gets_its_own_auc():
    rows = [(s, q) for s in "abc" for q in ("t1", "t2", "space")]
    data = StructureSet(Kind.BODY, np.zeros((len(rows), 1, 2, 2), np.uint8), np.array([r[0] for r in rows]),
                        np.array([f"{s}_{q}" for s, q in rows]), np.array([r[1] for r in rows]), np.array(["L4"] * len(rows)))
    pairs = all_pairs(data)
    first, second, same = pairs
    sequences = {frozenset((data.sequences[i], data.sequences[j])) for i, j in zip(first, second)}
    # T1 / T2 pairs separate perfectly, pairs with the T2-SPACE scan are reversed
    with_space = np.array([{data.sequences[i], data.sequences[j]} != {"t1", "t2"} for i, j in zip(first, second)])
    distances = np.where(same != with_space, 0.2, 0.8)
    assert len(sequences) == 3
    assert sequence_pair_auc(distances, data, pairs) == {"space / t1": 0.0, "space / t2": 0.0, "t1 / t2": 1.0}


def test_the_table_lists_every_pair_of_sequences_under_its_data_set():
    result = {"kind": "body", "positive_pairs": 3, "negative_pairs": 6, "auc": 0.9, "level_accuracy": 0.5,
              "study_auc": 1.0, "auc_by_sequences": {"t1 / t2": 0.95, "space / t2": 0.5}}
    table = pretrain_table({"SPIDER": {"body": result, "disc": {**result, "auc_by_sequences": {"t1 / t2": 0.8}}}})
    assert "| SPIDER | 90.0 | 90.0 | 50.0 / 50.0 | 3 / 6 · 3 / 6 | 100.0 / 100.0 | – / – |" in table
    assert "| SPIDER | t1 / t2 | 95.0 | 80.0 |" in table and "| SPIDER | space / t2 | 50.0 | – |" in table
