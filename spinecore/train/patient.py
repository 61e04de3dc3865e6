"""Training the patient-level head (thesis 8.2.1) on a :class:`~spinecore.data.patients.PatientSet`.

The features come from a trained grader and stay fixed, so the whole set is one batch: full-batch
AdamW on the squared error of the standardised scores (unknown scores left out), with dropout and
weight decay against the few patients. Deterministic for a given seed (CPU, fixed thread count).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from spinecore.data.patients import PatientSet
from spinecore.errors import SpineCoreError
from spinecore.grade.patient import KIND, PatientHead, PatientHeadConfig
from spinecore.models import TrainedModel
from spinecore.train.optimisation import adamw_warmup_cosine
from spinecore.train.seeding import seeded

#: A feature or score whose deviation is below this is treated as constant (divided by 1).
MIN_DEVIATION = 1e-6


@dataclass
class PatientHeadTraining:
    """Hyper-parameters of one run (all recorded in the model file)."""

    seed: int = 0
    steps: int = 200
    learning_rate: float = 3e-3
    weight_decay: float = 0.05
    hidden: int = 8
    dropout: float = 0.2


def _standardise(head: PatientHead, data: PatientSet) -> None:
    """Set the head's feature and score statistics from ``data`` (features of discs present only)."""
    mask = data.present.astype(bool)
    by_feature = np.moveaxis(data.features, 1, 2)[mask]  # (discs present, F)
    for name, values in (("feature", by_feature), ("score", data.scores)):
        mean, std = np.nanmean(values, 0), np.nanstd(values, 0)
        getattr(head, f"{name}_mean").copy_(torch.from_numpy(np.nan_to_num(mean)))
        getattr(head, f"{name}_std").copy_(torch.from_numpy(np.where(std > MIN_DEVIATION, std, 1.0)))


def train_patient_head(data: PatientSet, names: tuple[str, ...], settings: PatientHeadTraining) -> PatientHead:
    """A head trained to predict the scores ``names`` of ``data``."""
    if not np.isfinite(data.scores).any(0).all():
        raise SpineCoreError(None, "every score needs at least one patient with a known value")
    seeded(settings.seed)  # dropout draws from the seeded global generator
    head = PatientHead(PatientHeadConfig(data.features.shape[1], tuple(names), settings.hidden, settings.dropout))
    _standardise(head, data)
    features, present = torch.from_numpy(data.features), torch.from_numpy(data.present)
    target = (torch.from_numpy(data.scores) - head.score_mean) / head.score_std
    known = torch.isfinite(target)
    optimiser, schedule = adamw_warmup_cosine(head, settings.learning_rate, settings.weight_decay, settings.steps)
    head.train()
    for _ in range(settings.steps):
        error = (head(features, present) - torch.nan_to_num(target)) ** 2
        loss = error[known].mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    return head.eval()


def patient_head_model(head: PatientHead, data: PatientSet, settings: PatientHeadTraining, command: str,
                       grader: dict, data_note: str) -> TrainedModel:
    """The trained head as a model file; ``grader``: the metadata of the grader whose features it reads."""
    metadata = {"model_id": f"patient-head-seed{settings.seed}-{settings.steps}", "command": command,
                "settings": asdict(settings), "data": data_note, "train_patients": len(data),
                "grader_model_id": grader.get("model_id")}
    return TrainedModel(KIND, {"head": head.config.to_dict()}, head, metadata)
