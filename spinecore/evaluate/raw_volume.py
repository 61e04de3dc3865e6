"""Evaluating the raw-volume baseline exactly as a disc-volume grader is evaluated
(:func:`~spinecore.evaluate.grading.evaluate_logits`): each graded (scan, level) is one disc, graded
by that level's heads, so ``metrics.json`` / ``metrics.md`` put the two side by side on one split."""
from __future__ import annotations

import numpy as np

from spinecore.data.scans import ScanSet
from spinecore.evaluate.grading import ModelFacts, evaluate_logits
from spinecore.grade.calibration import dataset_logits
from spinecore.grade.grader import Grader
from spinecore.grade.schemes import GradingScheme


def evaluate_raw_volume(grader: Grader, scheme: GradingScheme, data: ScanSet, tta: bool = True, seed: int = 0) -> dict:
    """The metrics of the raw-volume ``grader`` (of :func:`~spinecore.grade.raw_volume.load_raw_volume`)
    on every graded disc of ``data``, per task of ``scheme`` over all levels and per sequence."""
    heads = dataset_logits(grader, data, tta)
    tasks = len(scheme.tasks)
    scan, level, discs = data.graded_discs()
    logits = [np.stack([heads[lv * tasks + t][n] for n, lv in zip(scan, level)]) for t in range(tasks)]
    temperatures = grader.net.temperature[:tasks].tolist()  # one per task, the same at every level
    facts = ModelFacts(scheme, grader.model_id, grader.metadata.get("train_majority", {}), temperatures)
    return evaluate_logits(logits, discs, facts, tta, seed)
