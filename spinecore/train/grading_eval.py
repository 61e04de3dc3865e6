"""Evaluating a grading model on a :class:`DiscSet` (thesis 4.3.1 plus agreement statistics).

Per task: average per-class accuracy (the thesis metric: the mean, over the classes present in the
reference, of the share of that class predicted right), Cohen's kappa (linear-weighted for ordinal
tasks), the confusion matrix, 95 % bootstrap intervals over patients, and the majority-class
baseline (always predicting the training set's most frequent class). Probabilities are judged by
the expected calibration error before and after temperature scaling; the temperatures are
cross-fitted over two patient halves so the reported error is not measured on its own fit.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from spinecore.grade.grader import Grader
from spinecore.grade.loss import MISSING
from spinecore.grade.schemes import Task
from spinecore.train.grading import expected_calibration_error, fit_temperature, softmax
from spinecore.train.grading_data import DiscSet

BOOTSTRAP = 1000


def average_class_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    classes = np.unique(truth)
    return float(np.mean([(predicted[truth == c] == c).mean() for c in classes])) if len(classes) else float("nan")


def kappa(truth: np.ndarray, predicted: np.ndarray, task: Task) -> float:
    if len(np.unique(np.concatenate([truth, predicted]))) < 2:
        return float("nan")  # undefined when truth and prediction are one and the same class
    return float(cohen_kappa_score(truth, predicted, labels=list(range(task.n_classes)),
                                   weights="linear" if task.ordinal else None))


def _interval(values: list[float]) -> list[float]:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return [round(float(v), 4) for v in np.percentile(values, [2.5, 97.5])] if len(values) else [None, None]


def task_metrics(task: Task, truth: np.ndarray, predicted: np.ndarray, patients: np.ndarray, majority: int,
                 seed: int = 0) -> dict:
    """Metrics of one task over graded samples (``truth`` != MISSING), with bootstrap intervals
    from resampling patients."""
    graded = truth != MISSING
    truth, predicted, patients = truth[graded], predicted[graded], patients[graded]
    if len(truth) == 0:
        return {"n": 0, "patients": 0}
    baseline = np.full_like(truth, majority)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(patients == p) for p in np.unique(patients)]
    boot = {"accuracy": [], "kappa": [], "baseline_accuracy": []}
    for _ in range(BOOTSTRAP):
        idx = np.concatenate([groups[i] for i in rng.integers(len(groups), size=len(groups))])
        boot["accuracy"].append(average_class_accuracy(truth[idx], predicted[idx]))
        boot["kappa"].append(kappa(truth[idx], predicted[idx], task))
        boot["baseline_accuracy"].append(average_class_accuracy(truth[idx], baseline[idx]))
    accuracy = average_class_accuracy(truth, predicted)
    agreement = kappa(truth, predicted, task)
    baseline_accuracy = average_class_accuracy(truth, baseline)
    return {
        "n": int(len(truth)), "patients": len(groups),
        "average_class_accuracy": round(accuracy, 4), "accuracy_ci95": _interval(boot["accuracy"]),
        "kappa": round(agreement, 4), "kappa_weights": "linear" if task.ordinal else "none",
        "kappa_ci95": _interval(boot["kappa"]),
        "majority_class": task.values[majority],
        "baseline_average_class_accuracy": round(baseline_accuracy, 4),
        "baseline_accuracy_ci95": _interval(boot["baseline_accuracy"]), "baseline_kappa": 0.0,
        "beats_baseline": bool(accuracy > baseline_accuracy and agreement > 0),
        "plain_accuracy": round(float((truth == predicted).mean()), 4),
        "confusion": {"values": list(task.values),
                      "rows_truth_cols_predicted": confusion_matrix(truth, predicted,
                                                                    labels=list(range(task.n_classes))).tolist()},
    }


def dataset_logits(grader: Grader, data: DiscSet, tta: bool, batch: int = 16) -> list[np.ndarray]:
    """Per-task logits ``(N, n_classes)`` of every disc of ``data``."""
    chunks = []
    for start in range(0, len(data), batch):
        x = torch.from_numpy(data.float_volumes(slice(start, start + batch)))
        chunks.append([l.numpy() for l in grader.logits(x, tta)])
    return [np.concatenate([c[t] for c in chunks]) for t in range(len(grader.scheme.tasks))]


def cross_fitted_temperatures(logits: np.ndarray, truth: np.ndarray, patients: np.ndarray) -> np.ndarray:
    """Per-sample temperature fitted on the other half of the patients."""
    names = np.unique(patients)
    half = np.isin(patients, names[np.random.default_rng(0).permutation(len(names))[: len(names) // 2]])
    out = np.ones(len(truth))
    for fit_on in (half, ~half):
        out[~fit_on] = fit_temperature(logits[fit_on], truth[fit_on])
    return out


def evaluate_grader(grader: Grader, data: DiscSet, tta: bool = True, seed: int = 0) -> dict:
    logits = dataset_logits(grader, data, tta)
    patients = np.asarray(data.patients)
    majority = grader.metadata.get("train_majority", {})
    tasks = {}
    for n, task in enumerate(grader.scheme.tasks):
        truth = data.labels[:, n]
        temperature = float(grader.net.temperature[n])
        predicted = logits[n].argmax(1)
        metrics = task_metrics(task, truth, predicted, patients, task.index(majority.get(task.name, task.values[0])), seed)
        if metrics["n"] == 0:
            tasks[task.name] = metrics
            continue
        cross = cross_fitted_temperatures(logits[n], truth, patients)
        z = logits[n] / cross[:, None]
        metrics["ece_uncalibrated"] = round(expected_calibration_error(softmax(logits[n]), truth), 4)
        metrics["ece_calibrated_crossfit"] = round(expected_calibration_error(softmax(z), truth), 4)
        metrics["temperature"] = round(temperature, 4)
        tasks[task.name] = metrics
    return {"model": grader.model_id, "scheme": grader.scheme.name, "tta": tta, "discs": len(data),
            "patients": len(set(data.patients)), "tasks": tasks}
