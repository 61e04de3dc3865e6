"""Subject identification by the Siamese network (thesis 7.4.1, Table 7.1): every same-level pair of
structures from two sequences, scored by the distance of their FC7 embeddings."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score, roc_curve

from spinecore.data.pairs import Pairs, StructureSet, all_pairs
from spinecore.grade.siamese import SiameseNet

EVALUATION_BATCH = 32


@torch.inference_mode()
def embedded_levels(net: SiameseNet, data: StructureSet) -> tuple[torch.Tensor, np.ndarray]:
    """Every volume's unit-length FC7 embedding ``(N, fc)`` and level-head class ``(N,)``, converted to
    float one batch at a time (a training set as float would not fit in memory)."""
    embedded, levels = [], []
    for start in range(0, len(data), EVALUATION_BATCH):
        features = net.features(torch.from_numpy(data.float_volumes(slice(start, start + EVALUATION_BATCH))), data.kind)
        embedded.append(F.normalize(features, dim=1))
        levels.append(net.levels(features, data.kind).argmax(1))
    return torch.cat(embedded), torch.cat(levels).numpy()


def pair_distances(net: SiameseNet, data: StructureSet) -> tuple[np.ndarray, Pairs]:
    """Distances of :func:`~spinecore.data.pairs.all_pairs` of ``data``, and those pairs."""
    pairs = all_pairs(data)
    return _distances(embedded_levels(net, data)[0], pairs), pairs


def _distances(embedded: torch.Tensor, pairs: Pairs) -> np.ndarray:
    return torch.linalg.vector_norm(embedded[pairs.first] - embedded[pairs.second], dim=1).numpy()


def _unordered(a: np.ndarray, b: np.ndarray, joiner: str) -> np.ndarray:
    """One name per pair, ``a`` and ``b`` in sorted order, so a pair reads the same either way round."""
    a, b = a.astype(str), b.astype(str)
    return np.char.add(np.char.add(np.where(a < b, a, b), joiner), np.where(a < b, b, a))


def study_distances(distances: np.ndarray, data: StructureSet, pairs: Pairs) -> tuple[np.ndarray, np.ndarray]:
    """Per pair of scans (two sequences) of ``pairs``: the mean of their same-level pair ``distances``
    over the levels both scans show whole (all their levels where none is), and whether both scans
    are one subject. This mean is what ``spinecore compare`` decides on."""
    studies, index = np.unique(_unordered(data.scans[pairs.first], data.scans[pairs.second], "|"), return_inverse=True)
    whole = data.whole[pairs.first] & data.whole[pairs.second]
    counted = whole | (np.bincount(index, weights=whole, minlength=len(studies)) == 0)[index]
    means = (np.bincount(index, weights=distances * counted, minlength=len(studies))
             / np.bincount(index, weights=counted, minlength=len(studies)))
    one_subject = np.zeros(len(studies), bool)
    one_subject[index] = pairs.same
    return means, one_subject


def sequence_pair_auc(distances: np.ndarray, data: StructureSet, pairs: Pairs) -> dict[str, float | None]:
    """ROC AUC of the ``pairs``' ``distances`` per pair of sequences (``t1 / t2``, ``t2 / space``, ...),
    so an easy pair of sequences cannot hide a hard one."""
    keys = _unordered(data.sequences[pairs.first], data.sequences[pairs.second], " / ")
    return {key: _auc(distances[keys == key], pairs.same[keys == key]) for key in sorted(set(keys.tolist()))}


def best_threshold(distances: np.ndarray, same: np.ndarray) -> float:
    """The distance below which a pair is called one subject, maximising Youden's J."""
    false_positive, true_positive, thresholds = roc_curve(same, -distances)
    return float(-thresholds[int(np.argmax(true_positive - false_positive))])


def subject_identification(net: SiameseNet, data: StructureSet, threshold: float | None = None) -> dict:
    """ROC AUC of ``-distance`` for same-subject pairs and for pairs of scans (:func:`study_distances`),
    the pair counts, the level accuracy of the auxiliary head, and, at the same-subject ``threshold``
    when given, the shares of one-subject and of two-subject scan pairs called right (apart: the
    different-subject pairs outnumber the others many times); ``distances`` and ``same`` for plots."""
    embedded, levels = embedded_levels(net, data)
    pairs = all_pairs(data)
    distances, same = _distances(embedded, pairs), pairs.same
    studies, one_subject = study_distances(distances, data, pairs)
    result = {"kind": data.kind.value, "subjects": len(set(data.subjects.tolist())), "volumes": len(data),
              "positive_pairs": int(same.sum()), "negative_pairs": int((~same).sum()), "auc": _auc(distances, same),
              "auc_by_sequences": sequence_pair_auc(distances, data, pairs),
              "study_pairs": [int(one_subject.sum()), int((~one_subject).sum())],
              "study_auc": _auc(studies, one_subject), "level_accuracy": float(np.mean(levels == data.level_index())),
              "distances": distances, "same": same}
    if threshold is not None:
        result["threshold"] = threshold
        result["same_called_same"], result["different_called_different"] = called_right(studies, one_subject, threshold)
    return result


def called_right(distances: np.ndarray, same: np.ndarray, threshold: float) -> tuple[float | None, float | None]:
    """Shares of the one-subject pairs called one subject (``distance < threshold``) and of the
    two-subject pairs called two; ``None`` where there is no such pair."""
    def share(called: np.ndarray) -> float | None:
        return float(called.mean()) if called.size else None

    return share(distances[same] < threshold), share(distances[~same] >= threshold)


def _auc(distances: np.ndarray, same: np.ndarray) -> float | None:
    return float(roc_auc_score(same, -distances)) if 0 < same.sum() < len(same) else None
