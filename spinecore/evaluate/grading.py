"""Evaluating a grading model on a :class:`~spinecore.data.manifests.DiscSet`: the metrics of
:mod:`spinecore.evaluate.metrics` per task, and the probabilities judged by the expected calibration
error before and after temperature scaling; the temperatures are cross-fitted over two patient
halves so the reported error is not measured on its own fit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spinecore.data.manifests import DiscSet, ManifestRow
from spinecore.errors import SpineCoreError
from spinecore.evaluate.metrics import NOT_FOUND, end_to_end_accuracy, paired_difference, task_metrics
from spinecore.grade.calibration import (
    dataset_logits,
    expected_calibration_error,
    fit_temperature,
    softmax,
)
from spinecore.grade.grader import Grader
from spinecore.grade.schemes import GradingScheme


def cross_fitted_temperatures(logits: np.ndarray, truth: np.ndarray, patients: np.ndarray) -> np.ndarray:
    """Per-sample temperature fitted on the other half of the patients."""
    names = np.unique(patients)
    half = np.isin(patients, names[np.random.default_rng(0).permutation(len(names))[: len(names) // 2]])
    out = np.ones(len(truth))
    for fit_on in (half, ~half):
        out[~fit_on] = fit_temperature(logits[fit_on], truth[fit_on])
    return out


@dataclass(frozen=True)
class ModelFacts:
    """What the metrics read of the model behind a set of logits: its ``scheme`` and ``model_id``, the
    training set's most frequent grade per task (``majority``, task name → grade) and its per-task
    softmax ``temperatures``."""

    scheme: GradingScheme
    model_id: str
    majority: dict
    temperatures: list[float]

    @classmethod
    def of(cls, grader: Grader) -> ModelFacts:
        return cls(grader.scheme, grader.model_id, grader.metadata.get("train_majority", {}),
                   grader.net.temperature.tolist())


def evaluate_grader(grader: Grader, data: DiscSet, tta: bool = True, seed: int = 0,
                    missed: list[ManifestRow] = ()) -> dict:
    """The metrics of ``grader`` on the discs of ``data`` (:func:`evaluate_logits`)."""
    return evaluate_logits(dataset_logits(grader, data, tta), data, ModelFacts.of(grader), tta, seed, missed)


def check_one_scheme(graders: dict[str, Grader]) -> None:
    """Models compared on one manifest must grade one scheme."""
    first = next(iter(graders.values()))
    for name, grader in graders.items():
        if grader.scheme.to_dict() != first.scheme.to_dict():
            raise SpineCoreError(None, f"model {name} grades scheme {grader.scheme.name!r}, not the first model's "
                                       f"{first.scheme.name!r}: compare models of one scheme")


#: The name of the models' mean in a comparison with ``ensemble``.
ENSEMBLE = "ensemble"


def compare_graders(graders: dict[str, Grader], data: DiscSet, tta: bool = True, seed: int = 0,
                    missed: list[ManifestRow] = (), ensemble: bool = False) -> dict:
    """Several models (``name → grader``, one scheme) on the same discs: each model's
    :func:`evaluate_grader` results (``models``), and per task the paired difference of each later
    model's average per-class accuracy from the first model's (``differences``: task → model → result
    of :func:`~spinecore.evaluate.metrics.paired_difference`). With ``ensemble`` the models' mean
    logits per task count as one more model, :data:`ENSEMBLE` (its majority grade the first model's,
    its temperatures 1)."""
    check_one_scheme(graders)
    (first_name, first), *_ = graders.items()
    logits = {name: dataset_logits(grader, data, tta) for name, grader in graders.items()}
    facts = {name: ModelFacts.of(grader) for name, grader in graders.items()}
    if ensemble:
        members = list(logits.values())
        logits[ENSEMBLE] = [np.mean([m[n] for m in members], axis=0) for n in range(len(first.scheme.tasks))]
        facts[ENSEMBLE] = ModelFacts(first.scheme, "mean of " + " + ".join(f.model_id for f in facts.values()),
                                     facts[first_name].majority, [1.0] * len(first.scheme.tasks))
    patients = np.asarray(data.patients)
    differences = {task.name: {name: paired_difference(data.labels[:, n], logits[first_name][n].argmax(1),
                                                       logits[name][n].argmax(1), patients, seed)
                               for name in list(logits)[1:]}
                   for n, task in enumerate(first.scheme.tasks)}
    models = {name: evaluate_logits(logits[name], data, facts[name], tta, seed, missed) for name in logits}
    return {"reference": first_name, "tta": tta, "models": models, "differences": differences}


def evaluate_logits(logits: list[np.ndarray], data, model: ModelFacts, tta: bool, seed: int = 0,
                    missed: list[ManifestRow] = ()) -> dict:
    """All the discs' results (:func:`_results`) and the same per sequence (``by_sequence``: the
    weighting of each scan's sagittal series, e.g. ``T1``, ``T2``). ``logits[task]`` ``(discs, classes)``
    of the discs of ``data`` (a :class:`DiscSet`, or anything with its ``labels``, ``patients``,
    ``levels``, ``scans`` and ``sequence()``) of ``model``."""
    scan_sequences = np.asarray([data.sequence(s) for s in data.scans])
    by_sequence = {}
    for sequence in sorted(set(scan_sequences)):
        picked = np.flatnonzero(scan_sequences == sequence)
        by_sequence[sequence] = _results(model, [x[picked] for x in logits], data.labels[picked],
                                         [data.patients[i] for i in picked], [data.levels[i] for i in picked],
                                         [r for r in missed if data.sequence(r.scan) == sequence], seed)
    return {"model": model.model_id, "scheme": model.scheme.name, "tta": tta,
            **_results(model, logits, data.labels, data.patients, data.levels, missed, seed),
            "by_sequence": by_sequence, "missed": [f"{r.scan} {r.level}" for r in missed]}


def _results(model: ModelFacts, logits: list[np.ndarray], labels: np.ndarray, patients: list[str],
             levels: list[str], missed: list[ManifestRow], seed: int) -> dict:
    """Of the discs found (per task ``logits[n]`` ``(discs, classes)``, ``labels`` ``(discs, tasks)``):
    per task the metrics (:func:`task_metrics`), calibration, and the end-to-end accuracy that counts
    the ``missed`` graded discs (not found by the localiser) as wrong; plus the share of graded
    discs found, overall and for L5-S1."""
    patients = np.asarray(patients)
    tasks = {}
    for n, task in enumerate(model.scheme.tasks):
        truth = labels[:, n]
        predicted = logits[n].argmax(1)
        majority = task.index(model.majority.get(task.name, task.values[0]))
        metrics = task_metrics(task, truth, predicted, patients, majority, seed)
        if metrics["n"] == 0:
            tasks[task.name] = metrics
            continue
        cross = cross_fitted_temperatures(logits[n], truth, patients)
        metrics["ece_uncalibrated"] = round(expected_calibration_error(softmax(logits[n]), truth), 4)
        metrics["ece_calibrated_crossfit"] = round(expected_calibration_error(softmax(logits[n] / cross[:, None]), truth), 4)
        metrics["temperature"] = round(float(model.temperatures[n]), 4)
        metrics["end_to_end"] = end_to_end_accuracy(
            np.concatenate([truth, [r.labels[n] for r in missed]]).astype(truth.dtype),
            np.concatenate([predicted, np.full(len(missed), NOT_FOUND)]),
            np.concatenate([patients, [r.patient for r in missed]]), seed)
        tasks[task.name] = metrics
    return {"discs": len(labels), "patients": len(set(patients)), "coverage": _coverage(levels, missed),
            "tasks": tasks}


def _coverage(levels: list[str], missed: list[ManifestRow]) -> dict:
    """Share of the graded discs that were found (``levels``: of those found), overall and for L5-S1."""
    found_l5s1, missed_l5s1 = levels.count("L5-S1"), sum(r.level == "L5-S1" for r in missed)
    return {"found": len(levels), "graded": len(levels) + len(missed),
            "share": round(len(levels) / (len(levels) + len(missed)), 4),
            "l5s1_share": round(found_l5s1 / (found_l5s1 + missed_l5s1), 4) if found_l5s1 + missed_l5s1 else None}
