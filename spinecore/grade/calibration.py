"""Calibrating a grader's probabilities: per-task softmax temperatures (fitted after training,
stored in ``GradingNet.temperature``) and the expected calibration error that judges them."""
from __future__ import annotations

import numpy as np
import torch
from scipy.special import logsumexp

from spinecore.grade.grader import Grader
from spinecore.grade.loss import MISSING

#: The temperatures tried when fitting: 121 steps, evenly spaced in log, from 0.25 to 8.
TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(8.0), 121))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The softmax temperature (grid over 0.25–8) minimising the negative log-likelihood of the
    graded ``labels`` (``MISSING`` ignored); 1.0 when nothing is graded."""
    valid = labels != MISSING
    if not valid.any():
        return 1.0
    scaled = logits[valid].astype(float)[None] / TEMPERATURES[:, None, None]  # (temperatures, samples, classes)
    picked = np.take_along_axis(scaled, labels[valid].astype(np.int64)[None, :, None], 2)[..., 0]
    losses = (logsumexp(scaled, axis=2) - picked).mean(1)
    return float(TEMPERATURES[int(np.argmin(losses))])


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """ECE of the top-class confidence over equal-width bins (graded samples only)."""
    valid = labels != MISSING
    p, y = probabilities[valid], labels[valid]
    if len(y) == 0:
        return float("nan")
    confidence, correct = p.max(1), (p.argmax(1) == y).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    return float(sum(abs(correct[which == b].mean() - confidence[which == b].mean()) * (which == b).mean()
                     for b in range(bins) if (which == b).any()))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = np.exp(z - z.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def dataset_logits(grader: Grader, data, tta: bool, batch: int = 16) -> list[np.ndarray]:
    """Per-task logits ``(N, n_classes)`` of every disc of ``data`` (a
    :class:`~spinecore.data.manifests.DiscSet`: ``len(data)`` discs, ``data.inputs(index)``)."""
    chunks = []
    for start in range(0, len(data), batch):
        x = {s: torch.from_numpy(v) for s, v in data.inputs(slice(start, start + batch)).items()}
        chunks.append([l.numpy() for l in grader.logits(x, tta)])
    return [np.concatenate([c[t] for c in chunks]) for t in range(len(grader.scheme.tasks))]


def calibrate(grader: Grader, data) -> list[float]:
    """Fit the per-task temperatures of ``grader`` on the graded discs of ``data`` (with TTA, as
    graded by default), store them in its network, and return them."""
    logits = dataset_logits(grader, data, tta=True)
    temperatures = [fit_temperature(logits[n], data.labels[:, n]) for n in range(len(grader.scheme.tasks))]
    grader.net.temperature.copy_(torch.tensor(temperatures))
    return temperatures
