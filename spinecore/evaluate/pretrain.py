"""Subject identification by the Siamese network (thesis 7.4.1, Table 7.1): every same-level pair of
structures from two sequences, scored by the distance of their FC7 embeddings."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score, roc_curve

from spinecore.data.pairs import StructureSet, all_pairs
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


def pair_distances(net: SiameseNet, data: StructureSet) -> tuple[np.ndarray, np.ndarray]:
    """Distances of :func:`~spinecore.data.pairs.all_pairs` of ``data`` and whether each pair is one subject."""
    return _distances(embedded_levels(net, data)[0], data)


def _distances(embedded: torch.Tensor, data: StructureSet) -> tuple[np.ndarray, np.ndarray]:
    first, second, same = all_pairs(data)
    return torch.linalg.vector_norm(embedded[first] - embedded[second], dim=1).numpy(), same


def study_distances(distances: np.ndarray, data: StructureSet) -> tuple[np.ndarray, np.ndarray]:
    """Per pair of scans (two sequences) of :func:`~spinecore.data.pairs.all_pairs`: the mean of their
    same-level pair ``distances`` and whether both scans are one subject. This mean over the levels two
    studies share is what ``spinecore compare`` decides on."""
    first, second, same = all_pairs(data)
    a, b = data.scans[first].astype(str), data.scans[second].astype(str)
    keys = np.char.add(np.char.add(np.where(a < b, a, b), "|"), np.where(a < b, b, a))
    studies, index = np.unique(keys, return_inverse=True)
    means = np.bincount(index, weights=distances, minlength=len(studies)) / np.bincount(index, minlength=len(studies))
    one_subject = np.zeros(len(studies), bool)
    one_subject[index] = same
    return means, one_subject


def sequence_pair_auc(distances: np.ndarray, same: np.ndarray, data: StructureSet) -> dict[str, float | None]:
    """ROC AUC of the :func:`~spinecore.data.pairs.all_pairs` ``distances`` per pair of sequences
    (``t1 / t2``, ``t2 / space``, ...), so an easy pair of sequences cannot hide a hard one."""
    first, second, _ = all_pairs(data)
    a, b = data.sequences[first].astype(str), data.sequences[second].astype(str)
    keys = np.char.add(np.char.add(np.where(a < b, a, b), " / "), np.where(a < b, b, a))
    return {key: _auc(distances[keys == key], same[keys == key]) for key in sorted(set(keys.tolist()))}


def best_threshold(distances: np.ndarray, same: np.ndarray) -> float:
    """The distance below which a pair is called one subject, maximising Youden's J."""
    false_positive, true_positive, thresholds = roc_curve(same, -distances)
    return float(-thresholds[int(np.argmax(true_positive - false_positive))])


def subject_identification(net: SiameseNet, data: StructureSet, threshold: float | None = None) -> dict:
    """ROC AUC of ``-distance`` for same-subject pairs and for pairs of scans (:func:`study_distances`),
    the pair counts, the level accuracy of the auxiliary head, and the scan pairs' accuracy at the
    same-subject ``threshold`` when given; ``distances`` and ``same`` for plots."""
    embedded, levels = embedded_levels(net, data)
    distances, same = _distances(embedded, data)
    studies, one_subject = study_distances(distances, data)
    result = {"kind": data.kind.value, "subjects": len(set(data.subjects.tolist())), "volumes": len(data),
              "positive_pairs": int(same.sum()), "negative_pairs": int((~same).sum()), "auc": _auc(distances, same),
              "auc_by_sequences": sequence_pair_auc(distances, same, data),
              "study_pairs": [int(one_subject.sum()), int((~one_subject).sum())],
              "study_auc": _auc(studies, one_subject), "level_accuracy": float(np.mean(levels == data.level_index())),
              "distances": distances, "same": same}
    if threshold is not None:
        result["threshold"] = threshold
        result["study_accuracy_at_threshold"] = float(np.mean((studies < threshold) == one_subject))
    return result


def _auc(distances: np.ndarray, same: np.ndarray) -> float | None:
    return float(roc_auc_score(same, -distances)) if 0 < same.sum() < len(same) else None
