"""Same-subject and different-subject pairs for Siamese pretraining (thesis Fig. 7.3)."""
from __future__ import annotations

import numpy as np
import pytest

from spinecore.data.pairs import (
    PositiveBatches,
    StructureSet,
    all_pairs,
    hold_out_subjects,
    sample_pairs,
    sources_of,
    sudirman_files,
)
from spinecore.data.sudirman import sudirman_split
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


def test_head_batches_are_one_level_and_one_pair_per_subject_across_two_sequences(data):
    batches = PositiveBatches(data)
    for seed in range(20):
        first, second = batches.sample(3, np.random.default_rng(seed))
        assert len(first) == 3 and len(set(data.subjects[first])) == 3  # three of the four subjects
        assert len(set(data.levels[np.concatenate([first, second])])) == 1
        assert np.all(data.subjects[first] == data.subjects[second])
        assert np.all(data.sequences[first] != data.sequences[second])
        assert "p5" not in set(data.subjects[first])
    assert len(batches.sample(10, np.random.default_rng(0))[0]) == 4  # no more than the level has
    with pytest.raises(SpineCoreError, match="no batch"):  # one subject per level: nothing to tell apart
        PositiveBatches(labelled(["a", "a", "b"], ["t1", "t2", "t1"], ["L4-L5", "L4-L5", "L4-L5"]))


def test_all_pairs_lists_every_cross_sequence_pair_of_a_level_once(data):
    first, second, same = all_pairs(data)
    # per level: 4 subjects × 2 sequences (+ p5's t2 at L4-L5); pairs across t1/t2 only
    assert len(first) == 4 * 4 + 4 * 5 and same.sum() == 8
    assert np.all(first < second) and np.all(data.levels[first] == data.levels[second])


def test_no_subject_with_two_sequences_means_no_positive_pair():
    with pytest.raises(SpineCoreError, match="no positive pair"):
        sample_pairs(labelled(["a", "b"], ["t1", "t2"], ["L4-L5", "L4-L5"]), 4, np.random.default_rng(0))


@pytest.fixture
def two_sources() -> StructureSet:
    return two_sources_set()


def two_sources_set() -> StructureSet:
    """Three SPIDER patients and three phantom patients, two sequences each, one level."""
    grid = [(s, q, "L4-L5") for s in ("7", "8", "9") for q in ("t1", "t2")]
    grid += [(f"phantom{s}", q, "L4-L5") for s in (1, 2, 3) for q in ("baseline", "follow-up")]
    return labelled(*zip(*grid))


def test_subjects_are_told_apart_by_source():
    assert sources_of(np.array(["12", "sudirman-12", "phantom2000"])).tolist() == ["spider", "sudirman", "phantom"]


def test_negative_pairs_never_join_two_sources(two_sources):
    first, second, same = sample_pairs(two_sources, 400, np.random.default_rng(2))
    sources = two_sources.sources()
    assert (~same).sum() == 200 and np.all(sources[first] == sources[second])
    first, second, same = all_pairs(two_sources)
    # per source: 3 subjects × 2 sequences, cross-sequence pairs 3 × 3 = 9, of which 3 positive
    assert len(first) == 18 and same.sum() == 6 and np.all(sources[first] == sources[second])


def test_a_subset_keeps_every_field_in_step(two_sources):
    phantoms = two_sources.subset(two_sources.sources() == "phantom")
    assert len(phantoms) == 6 and set(phantoms.sequences) == {"baseline", "follow-up"}
    assert all(scan.startswith(subject) for scan, subject in zip(phantoms.scans, phantoms.subjects))


def test_held_out_subjects_are_a_share_of_each_large_enough_source_for_every_kind():
    grid = [(str(s), q, "L4-L5") for s in range(20) for q in ("t1", "t2")]
    grid += [(f"phantom{s}", q, "L4-L5") for s in range(3) for q in ("baseline", "follow-up")]
    discs = labelled(*zip(*grid))
    bodies = StructureSet(Kind.BODY, discs.volumes, discs.subjects, discs.scans, discs.sequences,
                          np.array(["L4"] * len(discs)))
    kept, held_out = hold_out_subjects({Kind.DISC: discs, Kind.BODY: bodies}, 0.25, np.random.default_rng(0))
    out = set(held_out[Kind.DISC].subjects.tolist())
    assert out == set(held_out[Kind.BODY].subjects.tolist()) and len(out) == 5  # 25 % of 20 SPIDER, no phantom
    assert not out & set(kept[Kind.DISC].subjects.tolist()) and len(kept[Kind.BODY]) == len(bodies) - 10
    assert set(sources_of(np.array(sorted(out)))) == {"spider"}
    with pytest.raises(SpineCoreError, match="too few subjects"):
        hold_out_subjects({Kind.DISC: two_sources_set()}, 0.5, np.random.default_rng(0))


def test_sudirman_files_are_the_patients_of_one_part_with_their_own_ids(tmp_path):
    assert sudirman_files(tmp_path, "train") == []  # a pack without the second hospital
    images = tmp_path / "sudirman_midsag" / "images"
    images.mkdir(parents=True)
    patients = [str(n) for n in range(1, 11)]
    for patient in patients:
        for sequence in ("t1", "t2"):
            (images / f"{patient}_{sequence}.nii.gz").touch()
    split = sudirman_split(patients)
    for part in ("train", "validation"):
        found = sudirman_files(tmp_path, part)
        assert {subject for subject, _, _ in found} == {f"sudirman-{p}" for p in split[part]}
        assert all(path.name == f"{subject.removeprefix('sudirman-')}_{sequence}.nii.gz"
                   for subject, path, sequence in found)
        assert len(found) == 2 * len(split[part])
