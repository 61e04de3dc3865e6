"""Same-subject and different-subject pairs for Siamese pretraining (thesis Fig. 7.3)."""
from __future__ import annotations

import numpy as np
import pytest

from spinecore.data.pairs import StructureSet, all_pairs, sample_pairs
from spinecore.errors import SpineCoreError
from spinecore.grade.siamese import Kind


def labelled(subjects, sequences, levels) -> StructureSet:
    n = len(levels)
    return StructureSet(Kind.DISC, np.zeros((n, 9, 4, 4), np.uint8), np.array(subjects),
                        np.array([f"{s}_{q}" for s, q in zip(subjects, sequences)]), np.array(sequences), np.array(levels))


@pytest.fixture
def data() -> StructureSet:
    grid = [(s, q, level) for s in ("p1", "p2", "p3", "p4") for q in ("t1", "t2") for level in ("L4-L5", "L5-S1")]
    grid += [("p5", "t2", "L4-L5")]  # a subject with one sequence only: never in a positive pair
    return labelled(*zip(*grid))


def test_sampled_pairs_are_half_same_subject_and_always_one_level_across_two_sequences(data):
    first, second, same = sample_pairs(data, 400, np.random.default_rng(1))
    assert len(first) == 400 and same.sum() == 200
    assert np.all(data.levels[first] == data.levels[second])
    assert np.all(data.sequences[first] != data.sequences[second])
    assert np.all((data.subjects[first] == data.subjects[second]) == same)
    assert "p5" not in set(data.subjects[first[same]]) | set(data.subjects[second[same]])


def test_all_pairs_lists_every_cross_sequence_pair_of_a_level_once(data):
    first, second, same = all_pairs(data)
    # per level: 4 subjects × 2 sequences (+ p5's t2 at L4-L5); pairs across t1/t2 only
    assert len(first) == 4 * 4 + 4 * 5 and same.sum() == 8
    assert np.all(first < second) and np.all(data.levels[first] == data.levels[second])


def test_no_subject_with_two_sequences_means_no_positive_pair():
    with pytest.raises(SpineCoreError, match="no positive pair"):
        sample_pairs(labelled(["a", "b"], ["t1", "t2"], ["L4-L5", "L4-L5"]), 4, np.random.default_rng(0))
