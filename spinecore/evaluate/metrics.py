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


def average_class_accuracy(truth: np.ndarray, predicted: np.ndarray, weights: np.ndarray | None = None):
    """Mean over the classes in ``truth`` (non-negative integers) of the share of that class predicted
    right. With ``weights`` ``(resamplings, samples)`` (how many times each sample counts in each
    resampling, see :func:`bootstrap`) one value per resampling; NaN where nothing counts."""
    truth = np.asarray(truth, np.int64)
    single = weights is None
    weights = np.ones((1, len(truth))) if single else np.asarray(weights, float)
    one_hot = truth[:, None] == np.arange(truth.max(initial=-1) + 1)
    counts = weights @ one_hot
    hits = weights @ (one_hot & (truth == np.asarray(predicted))[:, None])
    present = counts > 0
    shares = np.divide(hits, counts, out=np.zeros_like(counts), where=present).sum(1)
    classes = present.sum(1)
    values = np.divide(shares, classes, out=np.full(len(weights), np.nan), where=classes > 0)
    return float(values[0]) if single else values


def confusion(truth: np.ndarray, predicted: np.ndarray, n_classes: int, weights: np.ndarray | None = None):
    """Counts ``(n_classes, n_classes)``, rows truth, columns prediction; samples of either outside the
    classes are left out. With ``weights`` ``(resamplings, samples)`` the weighted counts of each
    resampling, ``(resamplings, n_classes, n_classes)``."""
    truth, predicted = np.asarray(truth, np.int64), np.asarray(predicted, np.int64)
    inside = (truth >= 0) & (truth < n_classes) & (predicted >= 0) & (predicted < n_classes)
    cells = np.where(inside, truth * n_classes + predicted, -1)
    if weights is None:
        return np.bincount(cells[inside], minlength=n_classes ** 2).reshape(n_classes, -1)
    counts = np.asarray(weights, float) @ (cells[:, None] == np.arange(n_classes ** 2))
    return counts.reshape(-1, n_classes, n_classes)


def kappa(truth: np.ndarray, predicted: np.ndarray, task: Task, weights: np.ndarray | None = None):
    """Cohen's kappa over the task's :func:`confusion`, linear-weighted for an ordinal task; ``nan`` where
    it is undefined (truth and prediction one and the same class). With ``weights`` ``(resamplings,
    samples)`` one value per resampling, as :func:`average_class_accuracy`."""
    single = weights is None
    counts = confusion(truth, predicted, task.n_classes, np.ones((1, len(truth))) if single else weights)
    totals = np.maximum(counts.sum((1, 2)), 1.0)[:, None, None]
    expected = counts.sum(2)[:, :, None] * counts.sum(1)[:, None, :] / totals
    classes = np.arange(task.n_classes)
    penalty = np.abs(classes[:, None] - classes[None, :]) if task.ordinal else classes[:, None] != classes[None, :]
    disagreement = (penalty * expected).sum((1, 2))
    observed = (penalty * counts).sum((1, 2))
    values = 1.0 - np.divide(observed, disagreement, out=np.full(len(counts), np.nan), where=disagreement > 0)
    return float(values[0]) if single else values


def interval95(values: list[float]) -> list[float]:
    """The 2.5th and 97.5th percentiles of the finite ``values``, rounded; ``[None, None]`` if none."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return [round(float(v), 4) for v in np.percentile(values, [2.5, 97.5])] if len(values) else [None, None]


def excludes_zero(interval: list[float | None]) -> bool:
    """Whether a difference's :func:`interval95` lies wholly above or below zero."""
    return interval[0] is not None and (interval[0] > 0 or interval[1] < 0)


def bootstrap(statistics: dict, patients: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Each statistic over :data:`BOOTSTRAP` resamplings of the patients (all samples of a drawn patient
    together, a patient drawn k times counting k times). A statistic is a function of the resampling
    weights ``(BOOTSTRAP, samples)`` (how many times each sample is drawn in each resampling) that
    returns its ``(BOOTSTRAP, ...)`` values, all resamplings at once."""
    rng = np.random.default_rng(seed)
    names, patient_of = np.unique(patients, return_inverse=True)
    draws = rng.integers(len(names), size=(BOOTSTRAP, len(names)))
    drawn = np.bincount((draws + len(names) * np.arange(BOOTSTRAP)[:, None]).ravel(), minlength=BOOTSTRAP * len(names))
    weights = drawn.reshape(BOOTSTRAP, len(names))[:, patient_of].astype(float)
    return {name: statistic(weights) for name, statistic in statistics.items()}


def end_to_end_accuracy(truth: np.ndarray, predicted: np.ndarray, patients: np.ndarray, seed: int = 0) -> dict:
    """Average per-class accuracy over every graded disc (``truth`` != MISSING) where a disc the
    localiser did not find is predicted :data:`NOT_FOUND` and so counts as wrong, with its 95 %
    patient-bootstrap interval."""
    graded = truth != MISSING
    truth, predicted, patients = truth[graded], predicted[graded], patients[graded]
    if len(truth) == 0:
        return {"n": 0}
    boot = bootstrap({"accuracy": lambda w: average_class_accuracy(truth, predicted, w)}, patients, seed)
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
    boot = bootstrap({"difference": lambda w: average_class_accuracy(truth, other, w)
                      - average_class_accuracy(truth, reference, w)}, patients, seed)
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
    boot = bootstrap({"accuracy": lambda w: average_class_accuracy(truth, predicted, w),
                      "kappa": lambda w: kappa(truth, predicted, task, w),
                      "baseline_accuracy": lambda w: average_class_accuracy(truth, baseline, w)}, patients, seed)
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
