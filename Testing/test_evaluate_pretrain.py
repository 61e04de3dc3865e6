"""Subject identification (spinecore.evaluate.pretrain): pairs of structures and pairs of scans."""
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from spinecore.data.pairs import StructureSet, all_pairs
from spinecore.evaluate.pretrain import (auc, auc_interval, best_threshold, body_vectors, called_right, disc_vectors,
                                         scan_identities, sequence_pair_auc, subject_identification)
from spinecore.grade.identity import SIZE_WEIGHT, body_distance, body_vector, disc_distance, reference_bodies
from spinecore.grade.siamese import DISC_SIZE_DIMS, SIZE_DIMS, Kind
from spinecore.report.pretrain import pretrain_table


def _set(cut: tuple[str, ...] = ()) -> StructureSet:
    """Two subjects, each a T1 and a T2 scan, each scan two levels (volumes unused here); the scans
    ``cut`` show L5 only in part."""
    rows = [(s, q, level) for level in ("L4", "L5") for s in "ab" for q in ("t1", "t2")]
    return StructureSet(Kind.BODY, np.zeros((len(rows), 1, 2, 2), np.uint8), np.array([r[0] for r in rows]),
                        np.array([f"{r[0]}_{r[1]}" for r in rows]), np.array([r[1] for r in rows]),
                        np.array([r[2] for r in rows]),
                        np.array([not (level == "L5" and f"{s}_{q}" in cut) for s, q, level in rows]))


#: 1-D body embeddings: one subject's scans 0.1 apart at L4 and 0.3 at L5, two subjects' 0.5 and 0.9.
POSITIONS = {"L4": {"a_t1": 0.0, "a_t2": 0.1, "b_t1": 0.6, "b_t2": 0.5},
             "L5": {"a_t1": 0.0, "a_t2": 0.3, "b_t1": 1.2, "b_t2": 0.9}}
#: Every body's height and depth (mm): only the embeddings tell these apart.
SIZE_MM = (28.0, 40.0)


def vector(x: float) -> torch.Tensor:
    return body_vector(torch.tensor([x]), SIZE_MM)


REFERENCES = reference_bodies([{level: vector(x) for level in POSITIONS} for x in (-3.0, -1.0, 2.0, 4.0)])


def scan_pairs(data: StructureSet) -> list[tuple[bool, float, float]]:
    """(one subject, mean distance, score) per scan pair of ``data`` with :data:`POSITIONS`."""
    vectors = torch.stack([vector(POSITIONS[level][scan]) for scan, level in zip(data.scans, data.levels)])
    distances, scores, one_subject = scan_identities(vectors, data, all_pairs(data), REFERENCES)
    return sorted(zip(one_subject.tolist(), distances.round(6).tolist(), scores.tolist()))


def test_body_vectors_append_the_log_of_each_bodys_height_and_depth():
    data = _set()
    data.sizes[:] = [25.0, 40.0]
    data.sizes[data.subjects == "b"] = [30.0, 44.0]
    vectors = body_vectors(torch.zeros(len(data), 3), data)
    assert vectors.shape == (len(data), 3 + SIZE_DIMS)
    assert torch.equal(vectors[:, :3], torch.zeros(len(data), 3))
    assert vectors[data.subjects == "b", 3:].numpy() == pytest.approx(np.log([[30.0, 44.0]] * 4))
    # alike in looks, told apart by size
    first, second, same = all_pairs(data)
    distances = body_distance(vectors[first], vectors[second]).numpy()
    assert distances[same] == pytest.approx(0.0, abs=1e-6)
    assert distances[~same] == pytest.approx(SIZE_WEIGHT * np.hypot(np.log(30 / 25), np.log(44 / 40)), rel=1e-5)


def test_disc_vectors_append_the_log_of_each_discs_depth_alone():
    data = _set()
    data.kind = Kind.DISC
    data.sizes[:] = [9.0, 40.0]
    data.sizes[data.subjects == "b"] = [5.0, 44.0]  # subject b's discs: other depth, and narrowed
    vectors = disc_vectors(torch.zeros(len(data), 3), data)
    assert vectors.shape == (len(data), 3 + DISC_SIZE_DIMS)
    assert vectors[data.subjects == "b", 3].numpy() == pytest.approx(np.log([44.0] * 4))
    first, second, same = all_pairs(data)
    distances = disc_distance(vectors[first], vectors[second]).numpy()
    assert distances[same] == pytest.approx(0.0, abs=1e-6)
    assert distances[~same] == pytest.approx(SIZE_WEIGHT * np.log(44 / 40), rel=1e-5)  # the height plays no part


def test_structure_pairs_are_judged_by_appearance_and_size_and_by_appearance_alone():
    class Flat(torch.nn.Module):
        """An embedding by each volume's mean intensity (one number), a level head that always says 0."""
        def features(self, x, kind):
            return torch.stack([x.mean(dim=(1, 2, 3)), torch.ones(len(x))], dim=1)

        def levels(self, features, kind):
            return torch.zeros(len(features), 7)

    data = _set()
    data.kind, data.levels = Kind.DISC, np.where(data.levels == "L4", "L3-L4", "L4-L5")
    # looks mislead: each subject's T1 looks like the other's T2; their depths differ by more than any
    # appearance distance can (at most 2 between unit embeddings)
    data.volumes[:] = np.where((data.subjects == "a") == (data.sequences == "t1"), 60, 200)[:, None, None, None]
    data.sizes[:] = [9.0, 40.0]
    data.sizes[data.subjects == "b"] = [9.0, 40.0 * np.exp(2.5 / SIZE_WEIGHT)]
    result = subject_identification(Flat(), data)
    assert result["appearance_auc"] == pytest.approx(0.0)
    assert result["auc"] == pytest.approx(1.0)


def test_scan_pairs_average_their_levels_distances_and_score_them():
    data = _set()
    first, second, same = all_pairs(data)
    assert len(first) == 8 and same.sum() == 4  # per level: a_t1–a_t2, b_t1–b_t2 and two across subjects
    pairs = scan_pairs(data)
    assert [(one, distance) for one, distance, _ in pairs] == [(False, 0.7), (False, 0.7), (True, 0.2), (True, 0.2)]
    scores = np.array([score for _, _, score in pairs])
    assert scores[2:].max() < scores[:2].min()  # the farther pairs score higher
    assert scores[2:].max() <= best_threshold(scores, np.array([one for one, _, _ in pairs])) <= scores[:2].min()


def test_scan_pairs_the_references_cannot_judge_are_left_out():
    data = _set()
    vectors = torch.stack([vector(0.0)] * len(data))
    no_lumbar_bodies = reference_bodies([{"S1": vector(x)} for x in (0.0, 1.0, 2.0)])
    distances, scores, one_subject = scan_identities(vectors, data, all_pairs(data), no_lumbar_bodies)
    assert distances.shape == scores.shape == one_subject.shape == (0,)


def test_scan_pairs_leave_out_levels_not_seen_whole():
    def distances(data: StructureSet) -> list[tuple[bool, float]]:
        return [(one, distance) for one, distance, _ in scan_pairs(data)]

    # a_t1 shows L5 cut by the view: its two scan pairs average L4 alone
    assert distances(_set(cut=("a_t1",))) == [(False, 0.5), (False, 0.7), (True, 0.1), (True, 0.2)]
    # nothing of subject a seen whole: its scan pairs fall back to every level
    nothing_whole = _set()
    nothing_whole.whole[nothing_whole.subjects == "a"] = False
    assert distances(nothing_whole) == [(False, 0.7), (False, 0.7), (True, 0.2), (True, 0.2)]


def test_best_threshold_maximises_youdens_j():
    # separable: the largest same-subject distance; one same pair beyond the different ones moves it not
    assert best_threshold(np.array([0.1, 0.2, 0.5, 0.6]), np.array([True, True, False, False])) == pytest.approx(0.2)
    assert best_threshold(np.array([0.1, 0.2, 0.5, 0.6, 0.9]),
                          np.array([True, True, False, False, True])) == pytest.approx(0.2)


def test_one_and_two_subject_pairs_are_scored_apart_at_the_threshold():
    scores = np.array([0.1, 0.3, 0.2, 0.5, 0.6, 0.7])
    same = np.array([True, True, False, False, False, False])
    assert called_right(scores, same, 0.25) == (0.5, 0.75)
    assert called_right(scores[~same], same[~same], 0.25) == (None, 0.75)


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
              "auc_by_sequences": {"t1 / t2": 0.95, "space / t2": 0.5}}
    body = {**result, "auc_interval": [0.85, 0.95], "appearance_auc": 0.8, "study_distance_auc": 0.875,
            "study_score_auc": 1.0, "same_called_same": 1.0, "different_called_different": 0.75}
    disc = {**result, "appearance_auc": 0.7, "auc_by_sequences": {"t1 / t2": 0.8}}
    table = pretrain_table({"SPIDER": {"body": body, "disc": disc}})
    assert ("| SPIDER | 90.0 [85.0, 95.0] | 80.0 | 90.0 | 70.0 | 50.0 / 50.0 | 3 / 6 · 3 / 6 | 87.5 / 100.0 "
            "| 100.0 / 75.0 |" in table)
    assert "| thesis Siamese-B (TwinsUK, VB+IVD): longitudinal, same sequence | | 96.4 | | 95.5 |" in table
    assert "| SPIDER | t1 / t2 | 95.0 | 80.0 |" in table and "| SPIDER | space / t2 | 50.0 | – |" in table


def test_the_auc_counts_weighted_pairs_and_ties_as_sklearn_does():
    rng = np.random.default_rng(0)
    distances, same = rng.integers(0, 20, 300) / 10, rng.random(300) < 0.3  # many ties
    weights = rng.integers(0, 4, 300).astype(float)
    assert auc(distances, same, weights) == pytest.approx(roc_auc_score(same, -distances, sample_weight=weights))
    assert auc(distances, same) == pytest.approx(roc_auc_score(same, -distances))
    assert auc(distances, np.zeros(300, bool)) is None


def _subject_pairs(n_subjects: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """One one-subject pair per subject (distance about 0.3) and a pair of every two subjects (about 0.45)."""
    rng = np.random.default_rng(seed)
    first, second = np.triu_indices(n_subjects)
    same = first == second
    distances = np.where(same, 0.3, 0.45) + rng.normal(0, 0.1, len(same))
    return distances, same, first, second


def test_the_subject_bootstrap_interval_holds_the_auc_and_narrows_with_more_subjects():
    widths = []
    for n_subjects in (10, 80):
        distances, same, first, second = _subject_pairs(n_subjects)
        low, high = auc_interval(distances, same, first, second)
        assert low < auc(distances, same) < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 1.5
    distances, same, first, second = _subject_pairs(20)
    assert auc_interval(np.where(same, 0.1, 0.9), same, first, second) == [1.0, 1.0]
    assert auc_interval(distances, np.zeros(len(same), bool), first, second) == [None, None]
