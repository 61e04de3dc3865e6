"""Subject identification by the Siamese network (thesis 7.4.1, Table 7.1): every same-level pair of
structures from two sequences, scored by the distance of their FC7 embeddings, and every pair of
scans, scored as ``spinecore compare`` scores two studies (:mod:`spinecore.grade.identity`)."""
from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_curve

from spinecore.data.pairs import Pairs, StructureSet, all_pairs
from spinecore.errors import SpineCoreError
from spinecore.evaluate.metrics import BOOTSTRAP, interval95
from spinecore.grade.identity import (body_distance, body_vector, compared_levels, disc_distance, disc_vector,
                                      identity, reference_bodies, reference_distances)
from spinecore.grade.siamese import Kind, SiameseNet

log = logging.getLogger(__name__)
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


def body_vectors(embedded: torch.Tensor, bodies: StructureSet) -> torch.Tensor:
    """The identity vectors ``(N, fc + SIZE_DIMS)`` of ``bodies`` from their embeddings ``(N, fc)``
    (:func:`~spinecore.grade.identity.body_vector`)."""
    return body_vector(embedded, torch.from_numpy(bodies.sizes))


def disc_vectors(embedded: torch.Tensor, discs: StructureSet) -> torch.Tensor:
    """The identity vectors ``(N, fc + DISC_SIZE_DIMS)`` of ``discs`` from their embeddings ``(N, fc)``
    (:func:`~spinecore.grade.identity.disc_vector`: the depth, the second of ``sizes``)."""
    return disc_vector(embedded, torch.from_numpy(discs.sizes[:, 1]))


def _distances(embedded: torch.Tensor, pairs: Pairs) -> np.ndarray:
    return torch.linalg.vector_norm(embedded[pairs.first] - embedded[pairs.second], dim=1).numpy()


def _unordered(a: np.ndarray, b: np.ndarray, joiner: str) -> np.ndarray:
    """One name per pair, ``a`` and ``b`` in sorted order, so a pair reads the same either way round."""
    a, b = a.astype(str), b.astype(str)
    return np.char.add(np.char.add(np.where(a < b, a, b), joiner), np.where(a < b, b, a))


def scan_bodies(vectors: torch.Tensor, data: StructureSet) -> dict[str, dict[str, torch.Tensor]]:
    """Each scan's (``subject/scan``) body identity vectors by level, from ``vectors`` ``(N, fc + SIZE_DIMS)``."""
    bodies: dict[str, dict[str, torch.Tensor]] = {}
    for scan, level, vector in zip(_scan_ids(data), data.levels.tolist(), vectors):
        bodies.setdefault(scan, {})[level] = vector
    return bodies


def reference_scans(net: SiameseNet, bodies: StructureSet) -> torch.Tensor:
    """The reference array (:mod:`spinecore.grade.identity`) of every scan of ``bodies``."""
    return reference_bodies(list(scan_bodies(body_vectors(embedded_levels(net, bodies)[0], bodies), bodies).values()))


def scan_identities(vectors: torch.Tensor, data: StructureSet, pairs: Pairs,
                    references: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pair of scans (two sequences) of ``pairs``, from the bodies' identity ``vectors``
    (:func:`body_vectors`): the mean distance and the score of their
    bodies (:func:`~spinecore.grade.identity.identity`, over the levels both show whole, as ``spinecore
    compare`` scores two studies) and whether both are one subject. A pair the reference scans cannot
    judge (too few show its bodies) is left out, with a warning."""
    scans = _scan_ids(data)
    _, index = np.unique(_unordered(scans[pairs.first], scans[pairs.second], "|"), return_inverse=True)
    bodies = scan_bodies(vectors, data)
    to_references = {scan: reference_distances(references, levels) for scan, levels in bodies.items()}
    whole = data.whole[pairs.first] & data.whole[pairs.second]
    order = np.argsort(index, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(index[order])) + 1) if len(order) else []
    judged = []
    for members in groups:
        first, second = scans[pairs.first[members[0]]], scans[pairs.second[members[0]]]
        levels = data.levels[pairs.first[members]].tolist()
        compared = compared_levels(levels, {level for level, w in zip(levels, whole[members]) if w})
        try:
            result = identity(bodies[first], bodies[second], compared, to_references[first], to_references[second])
        except SpineCoreError:
            continue
        judged.append((result.distance, result.score, pairs.same[members[0]]))
    if len(judged) < len(groups):
        log.warning("%d of %d scan pairs left out: too few reference scans show their bodies",
                    len(groups) - len(judged), len(groups))
    if not judged:
        return np.zeros(0), np.zeros(0), np.zeros(0, bool)
    distances, scores, one_subject = map(np.array, zip(*judged))
    return distances, scores, one_subject.astype(bool)


def _scan_ids(data: StructureSet) -> np.ndarray:
    """``subject/scan`` per volume: scan file names alone may repeat across sources."""
    return np.char.add(np.char.add(data.subjects.astype(str), "/"), data.scans.astype(str))


def sequence_pair_auc(distances: np.ndarray, data: StructureSet, pairs: Pairs) -> dict[str, float | None]:
    """ROC AUC of the ``pairs``' ``distances`` per pair of sequences (``t1 / t2``, ``t2 / space``, ...),
    so an easy pair of sequences cannot hide a hard one."""
    keys = _unordered(data.sequences[pairs.first], data.sequences[pairs.second], " / ")
    return {key: auc(distances[keys == key], pairs.same[keys == key]) for key in sorted(set(keys.tolist()))}


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The score below which a pair is called one subject, maximising Youden's J."""
    false_positive, true_positive, thresholds = roc_curve(same, -scores)
    return float(-thresholds[int(np.argmax(true_positive - false_positive))])


def subject_identification(net: SiameseNet, data: StructureSet, threshold: float | None = None) -> dict:
    """ROC AUC of ``-distance`` for same-subject pairs of structures with its 95 % subject-bootstrap
    interval (:func:`auc_interval`), the pair counts and the level accuracy of the auxiliary head. A
    pair's distance is that of their identity vectors (appearance and size: a body's height and depth,
    :func:`~spinecore.grade.identity.body_distance`, a disc's depth,
    :func:`~spinecore.grade.identity.disc_distance`; ``appearance_auc``: of the embeddings alone, as the
    thesis). For bodies, per pair of scans
    (:func:`scan_identities`) the AUC of the mean distance and of the score, and at the same-subject
    ``threshold`` (on the score) when given, the shares of one-subject and of two-subject scan pairs
    called right (apart: the different-subject pairs outnumber the others many times); ``distances``
    and ``same`` for plots."""
    embedded, levels = embedded_levels(net, data)
    pairs = all_pairs(data)
    appearance, same = _distances(embedded, pairs), pairs.same
    if data.kind is Kind.BODY:
        vectors = body_vectors(embedded, data)
        distances = body_distance(vectors[pairs.first], vectors[pairs.second]).numpy()
    else:
        vectors = disc_vectors(embedded, data)
        distances = disc_distance(vectors[pairs.first], vectors[pairs.second]).numpy()
    result = {"kind": data.kind.value, "subjects": len(set(data.subjects.tolist())), "volumes": len(data),
              "positive_pairs": int(same.sum()), "negative_pairs": int((~same).sum()), "auc": auc(distances, same),
              "appearance_auc": auc(appearance, same),
              "auc_interval": auc_interval(distances, same, data.subjects[pairs.first], data.subjects[pairs.second]),
              "auc_by_sequences": sequence_pair_auc(distances, data, pairs),
              "level_accuracy": float(np.mean(levels == data.level_index())), "distances": distances, "same": same}
    if data.kind is Kind.BODY and len(pairs.same):
        scan_distances, scores, one_subject = scan_identities(vectors, data, pairs, net.references)
        result.update({"study_pairs": [int(one_subject.sum()), int((~one_subject).sum())],
                       "study_distance_auc": auc(scan_distances, one_subject),
                       "study_score_auc": auc(scores, one_subject)})
        if threshold is not None:
            result["threshold"] = threshold
            result["same_called_same"], result["different_called_different"] = called_right(scores, one_subject,
                                                                                            threshold)
    return result


def called_right(scores: np.ndarray, same: np.ndarray, threshold: float) -> tuple[float | None, float | None]:
    """Shares of the one-subject pairs called one subject (``score < threshold``) and of the
    two-subject pairs called two; ``None`` where there is no such pair."""
    def share(called: np.ndarray) -> float | None:
        return float(called.mean()) if called.size else None

    return share(scores[same] < threshold), share(scores[~same] >= threshold)


def auc(distances: np.ndarray, same: np.ndarray, weights: np.ndarray | None = None) -> float | None:
    """ROC AUC of ``-distances`` for the ``same`` pairs, each pair counted ``weights`` times (default
    once; ties half), as ``roc_auc_score(same, -distances, sample_weight=weights)``; ``None`` without
    pairs of both kinds."""
    weights = np.ones(len(distances)) if weights is None else weights
    return _weighted_auc(np.unique(distances, return_inverse=True)[1], same, weights)


def _weighted_auc(rank: np.ndarray, same: np.ndarray, weights: np.ndarray) -> float | None:
    """:func:`auc` from each pair's ``rank`` among the distinct distances (ascending)."""
    one = np.bincount(rank, weights=np.where(same, weights, 0.0))
    two = np.bincount(rank, weights=np.where(same, 0.0, weights), minlength=len(one))
    total = one.sum() * two.sum()
    if not total:
        return None
    farther = two.sum() - np.cumsum(two)
    return float((one * (farther + two / 2)).sum() / total)


def auc_interval(distances: np.ndarray, same: np.ndarray, first_subjects: np.ndarray, second_subjects: np.ndarray,
                 seed: int = 0) -> list[float | None]:
    """95 % interval of the pairs' AUC over :data:`~spinecore.evaluate.metrics.BOOTSTRAP` resamplings of
    the subjects: a subject drawn ``k`` times counts its one-subject pairs ``k`` times and its pairs
    with a subject drawn ``l`` times ``k·l`` times (a pair of two copies of one subject is not a
    two-subject pair); ``[None, None]`` without pairs of both kinds."""
    if not 0 < same.sum() < len(same):
        return [None, None]
    subjects, index = np.unique(np.concatenate([first_subjects, second_subjects]).astype(str), return_inverse=True)
    first, second = index[:len(distances)], index[len(distances):]
    rank = np.unique(distances, return_inverse=True)[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(BOOTSTRAP):
        drawn = np.bincount(rng.integers(len(subjects), size=len(subjects)), minlength=len(subjects)).astype(float)
        value = _weighted_auc(rank, same, np.where(same, drawn[first], drawn[first] * drawn[second]))
        values.append(np.nan if value is None else value)
    return interval95(values)
