"""Scores of the label-efficiency study (thesis Fig. 7.12): per task the average per-class accuracy,
and their mean over the tasks, with 95 % patient-bootstrap intervals; and the paired difference of
two graders on the same discs.

``labels`` and ``predicted`` are ``(discs, tasks)`` class indices (``labels`` ``MISSING`` where a
disc is not graded for a task); ``patients`` ``(discs,)`` names the patient of each disc.
"""
from __future__ import annotations

import numpy as np

from spinecore.evaluate.metrics import average_class_accuracy, bootstrap, excludes_zero, interval95
from spinecore.grade.loss import MISSING
from spinecore.grade.schemes import GradingScheme

#: The name of the mean over tasks in the scores.
MEAN = "mean"


def _scores(labels: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per task the average per-class accuracy on the graded discs (NaN if none counts), then their
    mean over the tasks that have some: ``(resamplings, tasks + 1)`` for the sample ``weights``
    ``(resamplings, discs)`` of :func:`~spinecore.evaluate.metrics.bootstrap`."""
    per_task = []
    for n in range(labels.shape[1]):
        graded = labels[:, n] != MISSING
        per_task.append(average_class_accuracy(labels[graded, n], predicted[graded, n], weights[:, graded]))
    per_task = np.stack(per_task, 1)
    counted = np.isfinite(per_task)
    mean = np.divide(np.where(counted, per_task, 0).sum(1), counted.sum(1),
                     out=np.full(len(per_task), np.nan), where=counted.any(1))
    return np.column_stack([per_task, mean])


def run_scores(scheme: GradingScheme, labels: np.ndarray, predicted: np.ndarray, patients: np.ndarray,
               seed: int = 0) -> dict:
    """``{"tasks": {task or MEAN: {"accuracy", "ci95"}}}`` of one grader's ``predicted``."""
    names = [*scheme.task_names, MEAN]
    point = _scores(labels, predicted, np.ones((1, len(labels))))[0]
    boot = bootstrap({"all": lambda w: _scores(labels, predicted, w)}, patients, seed)["all"]
    return {"tasks": {name: {"accuracy": round(float(point[k]), 4), "ci95": interval95(boot[:, k])}
                      for k, name in enumerate(names)}}


def paired_scores(scheme: GradingScheme, labels: np.ndarray, reference: np.ndarray, other: np.ndarray,
                  patients: np.ndarray, seed: int = 0) -> dict:
    """``{"tasks": {task or MEAN: {"difference", "ci95", "outside_zero"}}}``: ``other``'s scores
    minus ``reference``'s on the same discs, its interval from bootstraps that resample both together."""
    names = [*scheme.task_names, MEAN]

    def difference(weights: np.ndarray) -> np.ndarray:
        return _scores(labels, other, weights) - _scores(labels, reference, weights)

    point = difference(np.ones((1, len(labels))))[0]
    boot = bootstrap({"difference": difference}, patients, seed)["difference"]
    out = {}
    for k, name in enumerate(names):
        interval = interval95(boot[:, k])
        out[name] = {"difference": round(float(point[k]), 4), "ci95": interval,
                     "outside_zero": excludes_zero(interval)}
    return {"tasks": out}
