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


def _scores(labels: np.ndarray, predicted: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per task the average per-class accuracy on the graded discs among ``index`` (NaN if none),
    then their mean over the tasks that have some."""
    out = []
    for n in range(labels.shape[1]):
        graded = index[labels[index, n] != MISSING]
        out.append(average_class_accuracy(labels[graded, n], predicted[graded, n]) if len(graded) else float("nan"))
    return np.array([*out, np.nanmean(out)])


def run_scores(scheme: GradingScheme, labels: np.ndarray, predicted: np.ndarray, patients: np.ndarray,
               seed: int = 0) -> dict:
    """``{"tasks": {task or MEAN: {"accuracy", "ci95"}}}`` of one grader's ``predicted``."""
    names = [*scheme.task_names, MEAN]
    every = np.arange(len(labels))
    point = _scores(labels, predicted, every)
    boot = bootstrap({"all": lambda i: _scores(labels, predicted, i)}, patients, seed)["all"]
    return {"tasks": {name: {"accuracy": round(float(point[k]), 4), "ci95": interval95([b[k] for b in boot])}
                      for k, name in enumerate(names)}}


def paired_scores(scheme: GradingScheme, labels: np.ndarray, reference: np.ndarray, other: np.ndarray,
                  patients: np.ndarray, seed: int = 0) -> dict:
    """``{"tasks": {task or MEAN: {"difference", "ci95", "outside_zero"}}}``: ``other``'s scores
    minus ``reference``'s on the same discs, its interval from bootstraps that resample both together."""
    names = [*scheme.task_names, MEAN]

    def difference(index: np.ndarray) -> np.ndarray:
        return _scores(labels, other, index) - _scores(labels, reference, index)

    point = difference(np.arange(len(labels)))
    boot = bootstrap({"difference": difference}, patients, seed)["difference"]
    out = {}
    for k, name in enumerate(names):
        interval = interval95([b[k] for b in boot])
        out[name] = {"difference": round(float(point[k]), 4), "ci95": interval,
                     "outside_zero": excludes_zero(interval)}
    return {"tasks": out}
