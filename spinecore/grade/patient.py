"""The patient-level head (thesis 8.2.1, Fig. 8.1): patient scores (e.g. ODI sections) from the six
lumbar discs' feature vectors.

A grader's shared FC6 (or FC7) vector describes each disc (:func:`disc_features`); the six lumbar
discs T12-L1 … L5-S1 side by side make a ``(features, 6)`` map per patient, and the head's
convolution kernels span all six discs (1 × 6), so it learns "inter-disc" features; then ReLU,
dropout and a linear layer to one output per score. Input ``(N, features + 1, 6)``: the features
standardised with the training set's mean and deviation, then a presence row (1 where the disc was
found, its features 0 where not). Deviation from the thesis: each score is regressed (standardised,
squared error), not classified, so an ordered or summed score keeps its order.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spinecore.errors import ModelError, SpineCoreError
from spinecore.extract import disc_volumes
from spinecore.grade.grader import KIND as GRADER_KIND, load_grader_net
from spinecore.grade.network import GradingNet
from spinecore.io.series import Series
from spinecore.levels import LUMBAR_DISCS
from spinecore.localise import Localiser
from spinecore.models import default_model_path, load_model

#: Grader layers whose output is one shared vector per disc.
FEATURE_LAYERS = ("fc6", "fc7")
KIND = "patient_head"


@dataclass(frozen=True)
class PatientHeadConfig:
    """``features``: per disc; ``scores``: the score names, one output each; ``hidden``: kernels."""

    features: int
    scores: tuple[str, ...]
    hidden: int
    dropout: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PatientHeadConfig:
        return cls(**{**d, "scores": tuple(d["scores"])})


class PatientHead(nn.Module):
    """``forward(features (N, F, 6), present (N, 6))`` → standardised scores ``(N, scores)``;
    :meth:`predict` gives them in the manifest's units."""

    def __init__(self, config: PatientHeadConfig):
        super().__init__()
        self.config = config
        self.across_discs = nn.Conv1d(config.features + 1, config.hidden, len(LUMBAR_DISCS))
        self.out = nn.Sequential(nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(config.hidden, len(config.scores)))
        for name, size in (("feature_mean", config.features), ("feature_std", config.features),
                           ("score_mean", len(config.scores)), ("score_std", len(config.scores))):
            self.register_buffer(name, torch.zeros(size) if name.endswith("mean") else torch.ones(size))

    def forward(self, features: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        standard = (features - self.feature_mean[:, None]) / self.feature_std[:, None] * present[:, None]
        x = torch.cat([standard, present[:, None]], 1)
        return self.out(self.across_discs(x).squeeze(2))

    @torch.inference_mode()
    def predict(self, features: np.ndarray, present: np.ndarray) -> np.ndarray:
        """Scores ``(N, scores)`` in their own units from :func:`patient_features` arrays."""
        standard = self.eval()(torch.from_numpy(features), torch.from_numpy(present))
        return (standard * self.score_std + self.score_mean).numpy()


def feature_grader(path: Path | None) -> tuple[GradingNet, dict]:
    """The single-stream grader whose shared FC6/FC7 vectors the head reads (default: the bundled one)."""
    path = Path(path) if path is not None else default_model_path(GRADER_KIND)
    net, _, metadata = load_grader_net(path)
    if not isinstance(net, GradingNet) or net.config.branch not in FEATURE_LAYERS:
        raise SpineCoreError(path, "the patient head needs a single-stream grader whose tasks share FC6 "
                                   f"(branch {' or '.join(FEATURE_LAYERS)})")
    return net, metadata


@torch.inference_mode()
def patient_features(net: GradingNet, series: Series, localiser: Localiser) -> tuple[np.ndarray, np.ndarray]:
    """One study's disc features ``(F, 6)`` (zero for a lumbar disc not found) and presence ``(6,)``
    (``float32``), columns in :data:`LUMBAR_DISCS` order."""
    found = {v.level: v.array for v in disc_volumes(series, localiser(series)) if v.level in LUMBAR_DISCS}
    features = np.zeros((net.config.fc, len(LUMBAR_DISCS)), np.float32)
    present = np.zeros(len(LUMBAR_DISCS), np.float32)
    if found:
        shared = net.eval().trunk(torch.from_numpy(np.stack(list(found.values())).astype(np.float32)))
        for level, vector in zip(found, shared.numpy()):
            features[:, LUMBAR_DISCS.index(level)] = vector
            present[LUMBAR_DISCS.index(level)] = 1.0
    return features, present


def load_patient_head(path: Path) -> tuple[PatientHead, dict]:
    """The head and metadata of a patient-head model file."""
    checkpoint = load_model(path, KIND)
    try:
        head = PatientHead(PatientHeadConfig.from_dict(checkpoint["config"]["head"]))
        head.load_state_dict(checkpoint["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError):
        raise ModelError(path, "patient-head model file is damaged or from another spinecore version") from None
    return head.eval(), dict(checkpoint["metadata"])
