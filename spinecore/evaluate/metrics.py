"""Agreement metrics of one grading task (thesis 4.3.1 plus agreement statistics).

Average per-class accuracy (the thesis metric: the mean, over the classes present in the
reference, of the share of that class predicted right), Cohen's kappa (linear-weighted for ordinal
tasks), the confusion matrix, 95 % bootstrap intervals over patients, and the majority-class
baseline (always predicting the training set's most frequent class).
"""
from __future__ import annotations

import numpy as np

from spinecore.grade.loss import MISSING
from spinecore.grade.schemes import Task

#: Patient resamplings behind every 95 % interval.
BOOTSTRAP = 1000
#: The prediction recorded for a graded disc the localiser did not find: never right.
NOT_FOUND = -2  # neither a class index nor MISSING


def average_class_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Mean over the classes in ``truth`` (non-negative integers) of the share of that class predicted right."""
    truth = np.asarray(truth, np.int64)
    if not len(truth):
        return float("nan")
    counts = np.bincount(truth)
    hits = np.bincount(truth[truth == np.asarray(predicted)], minlength=len(counts))
    present = counts > 0
    return float(np.mean(hits[present] / counts[present]))


def confusion(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``(n_classes, n_classes)``, rows truth, columns prediction; samples of either outside the
    classes are left out."""
    truth, predicted = np.asarray(truth, np.int64), np.asarray(predicted, np.int64)
    inside = (truth >= 0) & (truth < n_classes) & (predicted >= 0) & (predicted < n_classes)
    return np.bincount(truth[inside] * n_classes + predicted[inside], minlength=n_classes ** 2).reshape(n_classes, -1)


def kappa(truth: np.ndarray, predicted: np.ndarray, task: Task) -> float:
    """Cohen's kappa over the task's :func:`confusion`, linear-weighted for an ordinal task; ``nan`` where
    it is undefined (truth and prediction one and the same class). In numpy: it runs thousands of times
    per bootstrap."""
    counts = confusion(truth, predicted, task.n_classes).astype(float)
    expected = np.outer(counts.sum(axis=1), counts.sum(axis=0)) / max(counts.sum(), 1.0)
    classes = np.arange(task.n_classes)
    weights = (np.abs(classes[:, None] - classes[None, :]) if task.ordinal else classes[:, None] != classes[None, :])
    disagreement = float((weights * expected).sum())
    return 1.0 - float((weights * counts).sum()) / disagreement if disagreement else float("nan")


def interval95(values: list[float]) -> list[float]:
    """The 2.5th and 97.5th percentiles of the finite ``values``, rounded; ``[None, None]`` if none."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return [round(float(v), 4) for v in np.percentile(values, [2.5, 97.5])] if len(values) else [None, None]


def excludes_zero(interval: list[float | None]) -> bool:
    """Whether a difference's :func:`interval95` lies wholly above or below zero."""
    return interval[0] is not None and (interval[0] > 0 or interval[1] < 0)


def bootstrap(statistics: dict, patients: np.ndarray, seed: int = 0) -> dict[str, list[float]]:
    """Each statistic (a function of sample indices) over :data:`BOOTSTRAP` resamplings of the
    patients (all samples of a drawn patient together)."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(patients == p) for p in np.unique(patients)]
    values = {name: [] for name in statistics}
    for _ in range(BOOTSTRAP):
        index = np.concatenate([groups[i] for i in rng.integers(len(groups), size=len(groups))])
        for name, statistic in statistics.items():
            values[name].append(statistic(index))
    return values


def end_to_end_accuracy(truth: np.ndarray, predicted: np.ndarray, patients: np.ndarray, seed: int = 0) -> dict:
    """Average per-class accuracy over every graded disc (``truth`` != MISSING) where a disc the
    localiser did not find is predicted :data:`NOT_FOUND` and so counts as wrong, with its 95 %
    patient-bootstrap interval."""
    graded = truth != MISSING
    truth, predicted, patients = truth[graded], predicted[graded], patients[graded]
    if len(truth) == 0:
        return {"n": 0}
    boot = bootstrap({"accuracy": lambda i: average_class_accuracy(truth[i], predicted[i])}, patients, seed)
    return {"n": int(len(truth)), "missed": int((predicted == NOT_FOUND).sum()),
            "average_class_accuracy": round(average_class_accuracy(truth, predicted), 4),
            "accuracy_ci95": interval95(boot["accuracy"])}


def paired_difference(truth: np.ndarray, reference: np.ndarray, other: np.ndarray, patients: np.ndarray,
                      seed: int = 0) -> dict:
    """Average per-class accuracy of the ``other`` predictions minus that of the ``reference``
    predictions on the same graded samples (``truth`` != MISSING), with a 95 % interval from patient
    bootstraps that resample both together (a paired comparison: far narrower than two intervals)."""
    graded = truth != MISSING
    truth, reference, other, patients = truth[graded], reference[graded], other[graded], patients[graded]
    if len(truth) == 0:
        return {"n": 0}
    boot = bootstrap({"difference": lambda i: average_class_accuracy(truth[i], other[i])
                      - average_class_accuracy(truth[i], reference[i])}, patients, seed)
    interval = interval95(boot["difference"])
    return {"n": int(len(truth)),
            "difference": round(average_class_accuracy(truth, other) - average_class_accuracy(truth, reference), 4),
            "ci95": interval, "outside_zero": excludes_zero(interval)}


def task_metrics(task: Task, truth: np.ndarray, predicted: np.ndarray, patients: np.ndarray, majority: int,
                 seed: int = 0) -> dict:
    """Metrics of one task over graded samples (``truth`` != MISSING), with bootstrap intervals
    from resampling patients."""
    graded = truth != MISSING
    truth, predicted, patients = truth[graded], predicted[graded], patients[graded]
    if len(truth) == 0:
        return {"n": 0, "patients": 0}
    baseline = np.full_like(truth, majority)
    boot = bootstrap({"accuracy": lambda i: average_class_accuracy(truth[i], predicted[i]),
                      "kappa": lambda i: kappa(truth[i], predicted[i], task),
                      "baseline_accuracy": lambda i: average_class_accuracy(truth[i], baseline[i])}, patients, seed)
    accuracy = average_class_accuracy(truth, predicted)
    agreement = kappa(truth, predicted, task)
    baseline_accuracy = average_class_accuracy(truth, baseline)
    return {
        "n": int(len(truth)), "patients": len(np.unique(patients)),
        "average_class_accuracy": round(accuracy, 4), "accuracy_ci95": interval95(boot["accuracy"]),
        "kappa": round(agreement, 4), "kappa_weights": "linear" if task.ordinal else "none",
        "kappa_ci95": interval95(boot["kappa"]),
        "majority_class": task.values[majority],
        "baseline_average_class_accuracy": round(baseline_accuracy, 4),
        "baseline_accuracy_ci95": interval95(boot["baseline_accuracy"]), "baseline_kappa": 0.0,
        "beats_baseline": bool(accuracy > baseline_accuracy and agreement > 0),
        "plain_accuracy": round(float((truth == predicted).mean()), 4),
        "confusion": {"values": list(task.values),
                      "rows_truth_cols_predicted": confusion(truth, predicted, task.n_classes).tolist()},
    }
