"""The label-efficiency study of thesis 7.4.3 (Fig. 7.12): graders trained on a growing share of the
training patients, once from scratch and once from a pretrained Siamese tower (``--init``), with the
same steps and seed, each judged on the same validation discs without test-time augmentation.

The shares are nested: the patients are shuffled once with the seed and a share takes the first
ones, so the 10 % patients are among the 25 % patients, and so on.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from spinecore.data.manifests import DiscSet
from spinecore.evaluate.label_efficiency import paired_scores, run_scores
from spinecore.grade.calibration import dataset_logits
from spinecore.grade.grader import Grader
from spinecore.grade.schemes import GradingScheme
from spinecore.models import TrainedModel
from spinecore.train.grading import GradingTraining, train_grading_model

log = logging.getLogger(__name__)
#: The shares of training patients of thesis Fig. 7.12.
FRACTIONS = (0.10, 0.25, 0.50, 1.00)
#: The two starts compared: Glorot weights, or Conv1–Conv5 of the Siamese model.
STARTS = ("scratch", "pretrained")


def patient_share(data: DiscSet, fraction: float, seed: int) -> DiscSet:
    """The discs of the first ``ceil(fraction × patients)`` patients of one seeded shuffle of
    ``data``'s patients (at least one patient)."""
    names = sorted(set(data.patients))
    order = np.random.default_rng(seed).permutation(len(names))
    chosen = {names[i] for i in order[: max(1, math.ceil(fraction * len(names)))]}
    return data.subset(np.flatnonzero([p in chosen for p in data.patients]))


def label_efficiency(train: DiscSet, validation: DiscSet, scheme: GradingScheme, settings: GradingTraining,
                     init: Path, command: str, fractions=FRACTIONS,
                     on_run: Callable[[dict, TrainedModel], None] = lambda run, model: None) -> dict:
    """Train one grader per share of ``train``'s patients (``fractions``) and start (:data:`STARTS`:
    ``settings`` without and with ``init``), score each on ``validation``
    (:func:`~spinecore.evaluate.label_efficiency.run_scores`) and each share's pretrained-minus-scratch
    difference (:func:`~spinecore.evaluate.label_efficiency.paired_scores`). ``on_run(run, model)``
    sees every run as it finishes. Returns the settings, the ``runs`` and the ``differences``."""
    runs, differences = [], []
    patients = np.asarray(validation.patients)
    for fraction in fractions:
        share = patient_share(train, fraction, settings.seed)
        predicted = {}
        for start in STARTS:
            run_settings = replace(settings, init=str(init) if start == "pretrained" else None)
            model = train_grading_model(share, scheme, run_settings, command,
                                        data_note=f"{fraction:.0%} of the training patients")
            logits = dataset_logits(Grader(model.network, scheme, model.metadata), validation, tta=False)
            predicted[start] = np.stack([x.argmax(1) for x in logits], 1)
            run = {"fraction": fraction, "start": start, "patients": len(set(share.patients)), "discs": len(share),
                   "model_id": model.metadata["model_id"],
                   **run_scores(scheme, validation.labels, predicted[start], patients, settings.seed)}
            runs.append(run)
            on_run(run, model)
        differences.append({"fraction": fraction, **paired_scores(scheme, validation.labels, predicted["scratch"],
                                                                  predicted["pretrained"], patients, settings.seed)})
    return {"steps": settings.steps, "seed": settings.seed, "init": str(init), "freeze_conv": settings.freeze_conv,
            "train_patients": len(set(train.patients)), "train_discs": len(train),
            "validation_patients": len(set(validation.patients)), "validation_discs": len(validation),
            "runs": runs, "differences": differences}
