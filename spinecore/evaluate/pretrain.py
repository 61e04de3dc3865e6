"""Subject identification by the Siamese network (thesis 7.4.1, Table 7.1): every same-level pair of
structures from two sequences, scored by the distance of their FC7 embeddings."""
from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from spinecore.data.pairs import StructureSet, all_pairs
from spinecore.grade.siamese import SiameseNet, embeddings

EVALUATION_BATCH = 32


def pair_distances(net: SiameseNet, data: StructureSet) -> tuple[np.ndarray, np.ndarray]:
    """Distances of :func:`~spinecore.data.pairs.all_pairs` of ``data`` and whether each pair is one subject."""
    embedded = embeddings(net, torch.from_numpy(data.float_volumes(slice(None))), data.kind)
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


def best_threshold(distances: np.ndarray, same: np.ndarray) -> float:
    """The distance below which a pair is called one subject, maximising Youden's J."""
    false_positive, true_positive, thresholds = roc_curve(same, -distances)
    return float(-thresholds[int(np.argmax(true_positive - false_positive))])


def subject_identification(net: SiameseNet, data: StructureSet, threshold: float | None = None) -> dict:
    """ROC AUC of ``-distance`` for same-subject pairs and for pairs of scans (:func:`study_distances`),
    the pair counts, the level accuracy of the auxiliary head, and the scan pairs' accuracy at the
    same-subject ``threshold`` when given; ``distances`` and ``same`` for plots."""
    distances, same = pair_distances(net, data)
    with torch.inference_mode():
        volumes = torch.from_numpy(data.float_volumes(slice(None)))
        levels = torch.cat([net.levels(net.features(volumes[i:i + EVALUATION_BATCH], data.kind), data.kind)
                            for i in range(0, len(volumes), EVALUATION_BATCH)]).argmax(1).numpy()
    studies, one_subject = study_distances(distances, data)
    result = {"kind": data.kind.value, "subjects": len(set(data.subjects.tolist())), "volumes": len(data),
              "positive_pairs": int(same.sum()), "negative_pairs": int((~same).sum()), "auc": _auc(distances, same),
              "study_pairs": [int(one_subject.sum()), int((~one_subject).sum())],
              "study_auc": _auc(studies, one_subject), "level_accuracy": float(np.mean(levels == data.level_index())),
              "distances": distances, "same": same}
    if threshold is not None:
        result["threshold"] = threshold
        result["study_accuracy_at_threshold"] = float(np.mean((studies < threshold) == one_subject))
    return result


def _auc(distances: np.ndarray, same: np.ndarray) -> float | None:
    return float(roc_auc_score(same, -distances)) if 0 < same.sum() < len(same) else None
