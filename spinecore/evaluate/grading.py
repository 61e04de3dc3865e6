"""Evaluating a grading model on a :class:`~spinecore.data.manifests.DiscSet`: the metrics of
:mod:`spinecore.evaluate.metrics` per task, and the probabilities judged by the expected calibration
error before and after temperature scaling; the temperatures are cross-fitted over two patient
halves so the reported error is not measured on its own fit.
"""
from __future__ import annotations

import numpy as np

from spinecore.data.manifests import DiscSet, ManifestRow
from spinecore.evaluate.metrics import NOT_FOUND, end_to_end_accuracy, task_metrics
from spinecore.grade.calibration import dataset_logits, expected_calibration_error, fit_temperature, softmax
from spinecore.grade.grader import Grader


def cross_fitted_temperatures(logits: np.ndarray, truth: np.ndarray, patients: np.ndarray) -> np.ndarray:
    """Per-sample temperature fitted on the other half of the patients."""
    names = np.unique(patients)
    half = np.isin(patients, names[np.random.default_rng(0).permutation(len(names))[: len(names) // 2]])
    out = np.ones(len(truth))
    for fit_on in (half, ~half):
        out[~fit_on] = fit_temperature(logits[fit_on], truth[fit_on])
    return out


def evaluate_grader(grader: Grader, data: DiscSet, tta: bool = True, seed: int = 0,
                    missed: list[ManifestRow] = ()) -> dict:
    """Per task: the metrics on the discs found (:func:`task_metrics`), calibration, and the
    end-to-end accuracy that counts the ``missed`` graded discs (not found by the localiser) as
    wrong; plus the share of graded discs found, overall and for L5-S1."""
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
        metrics["end_to_end"] = end_to_end_accuracy(
            np.concatenate([truth, [r.labels[n] for r in missed]]).astype(truth.dtype),
            np.concatenate([predicted, np.full(len(missed), NOT_FOUND)]),
            np.concatenate([patients, [r.patient for r in missed]]), seed)
        tasks[task.name] = metrics
    return {"model": grader.model_id, "scheme": grader.scheme.name, "tta": tta, "discs": len(data),
            "patients": len(set(data.patients)), "coverage": _coverage(data, missed), "tasks": tasks,
            "missed": [f"{r.scan} {r.level}" for r in missed]}


def _coverage(data: DiscSet, missed: list[ManifestRow]) -> dict:
    """Share of the manifest's graded discs that were found, overall and for L5-S1."""
    found_l5s1, missed_l5s1 = data.levels.count("L5-S1"), sum(r.level == "L5-S1" for r in missed)
    return {"found": len(data), "graded": len(data) + len(missed),
            "share": round(len(data) / (len(data) + len(missed)), 4),
            "l5s1_share": round(found_l5s1 / (found_l5s1 + missed_l5s1), 4) if found_l5s1 + missed_l5s1 else None}
