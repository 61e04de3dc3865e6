"""Training the raw-volume baseline (thesis 6.3) on a :class:`~spinecore.data.scans.ScanSet`.

The grader's loop (:func:`~spinecore.train.grading.optimise`: class-balanced multi-task loss, here one
task per (level, task) head, a level's missing labels ignored; AdamW with warm-up and cosine decay),
on whole-scan volumes augmented as whole images (:data:`RAW_AUGMENTATION`). The thesis' curriculum
(6.3.1): ``init`` starts Conv1 … Conv5 from a trained disc-volume grader; without it, from scratch.
Deterministic for a given seed. Then one softmax temperature per task, shared by the six levels, is
fitted on the calibration scans.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from spinecore.data.scans import ScanSet
from spinecore.errors import SpineCoreError
from spinecore.extract.scan import SCAN_SHAPE
from spinecore.grade.augment import Augmentation
from spinecore.grade.calibration import dataset_logits, fit_temperature
from spinecore.grade.fusion import FusionConfig, FusionNet
from spinecore.grade.grader import Grader, load_grader_net
from spinecore.grade.loss import MISSING
from spinecore.grade.network import GradingNet, NetConfig
from spinecore.grade.raw_volume import KIND, LEVELS, per_level, raw_volume_config
from spinecore.grade.schemes import GradingScheme
from spinecore.models import TrainedModel
from spinecore.train.grading import optimise
from spinecore.train.optimisation import Optimisation
from spinecore.train.seeding import seeded
from spinecore.train.transfer import TOWER_FIELDS, convolutions

#: Whole-image augmentation: the disc volumes' scale, intensity, slice shift and reflection, with a
#: smaller rotation and ±16-pixel shifts (6 % of the image), so the lowest discs stay in view.
RAW_AUGMENTATION = Augmentation(rotation_deg=10.0, shift_cols=16, shift_rows=16)


@dataclass
class RawVolumeTraining(Optimisation):
    """Hyper-parameters of one run (all recorded in the model file)."""

    init: str | None = None  # a disc-volume grader model file whose Conv1 … Conv5 start the net (curriculum)


def grader_tower(path: Path, config: NetConfig) -> tuple[GradingNet | FusionNet, dict]:
    """The grader model at ``path`` and its metadata, once its convolutions are known to fit a net of
    ``config``; raises :class:`SpineCoreError` naming the file when they do not (or it is no grader)."""
    grader, _, metadata = load_grader_net(path)
    tower = grader.config.net if isinstance(grader.config, FusionConfig) else grader.config
    if any(getattr(tower, f) != getattr(config, f) for f in TOWER_FIELDS):
        raise SpineCoreError(path, f"its convolutions ({tower.dims}-D, {tower.slices} slices, widths {tower.widths}) "
                                   f"do not fit the raw-volume net's ({config.dims}-D, {config.slices} slices, "
                                   f"widths {config.widths})")
    return grader, metadata


def start_raw_volume(scheme: GradingScheme, settings: RawVolumeTraining) -> tuple[GradingNet, dict | None]:
    """The untrained net: Glorot weights, then Conv1 … Conv5 (weights and batch normalisation) of
    the grader ``settings.init`` when given; with the record of that copy (``None`` without it)."""
    net = GradingNet(raw_volume_config(scheme))
    if settings.init is None:
        return net, None
    grader, metadata = grader_tower(Path(settings.init), net.config)
    convolutions(net).load_state_dict(convolutions(grader).state_dict())
    return net, {"from": settings.init, "grader_model_id": metadata.get("model_id"), "layers": "conv1-conv5"}


def calibrate_tasks(grader: Grader, data: ScanSet, tasks: int) -> list[float]:
    """Fit one temperature per task over the graded discs of all levels of ``data`` (with TTA, as
    evaluated), store it in every level's head of ``grader``'s net, and return them."""
    logits = dataset_logits(grader, data, tta=True)
    temperatures = [fit_temperature(np.concatenate(logits[t::tasks]), data.labels[:, t::tasks].T.ravel())
                    for t in range(tasks)]
    grader.net.temperature.copy_(torch.tensor(temperatures * len(LEVELS)))
    return temperatures


def train_raw_volume_model(train: ScanSet, scheme: GradingScheme, settings: RawVolumeTraining, command: str,
                           calibration: ScanSet | None = None, data_note: str = "") -> TrainedModel:
    """Train the raw-volume net, then calibrate it on ``calibration`` (:func:`calibrate_tasks`)."""
    rng, generator = seeded(settings.seed)
    net, transferred = start_raw_volume(scheme, settings)
    net = optimise(net, train, per_level(scheme), settings, rng, generator, augmentation=RAW_AUGMENTATION)
    by_task = train.labels.reshape(len(train), len(LEVELS), -1)
    counts = {t.name: np.bincount(by_task[:, :, n][by_task[:, :, n] != MISSING], minlength=t.n_classes).tolist()
              for n, t in enumerate(scheme.tasks)}
    metadata = {
        "model_id": f"raw-volume-{scheme.name}-{'grader' if settings.init else 'scratch'}-seed{settings.seed}-"
                    f"{settings.steps}",
        "command": command, "settings": asdict(settings), "data": data_note, "levels": list(LEVELS),
        "input_shape": list(SCAN_SHAPE), "train_scans": len(train), "train_patients": len(set(train.patients)),
        "train_class_counts": counts,
        "train_majority": {t.name: t.values[int(np.argmax(counts[t.name]))] for t in scheme.tasks},
        "transfer": transferred,
    }
    if calibration is not None:
        temperatures = calibrate_tasks(Grader(net, per_level(scheme), metadata), calibration, len(scheme.tasks))
        metadata["calibration"] = {"scans": len(calibration), "patients": len(set(calibration.patients)),
                                   "temperatures": dict(zip(scheme.task_names, temperatures))}
    return TrainedModel(KIND, {"net": net.config.to_dict(), "scheme": scheme.to_dict()}, net, metadata)
