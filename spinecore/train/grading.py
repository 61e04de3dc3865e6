"""Training a grading model on a :class:`DiscSet` (then calibrated, :mod:`spinecore.grade.calibration`).

Deterministic for a given seed (CPU, fixed thread count). Deviations from thesis 4.2.3.1, for
a CPU budget: AdamW with cosine decay instead of SGD with step decay, a compact network.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from spinecore.data.manifests import DiscSet
from spinecore.errors import SpineCoreError
from spinecore.grade.augment import AXIAL, Augmentation, apply, augment, draw
from spinecore.grade.calibration import calibrate
from spinecore.grade.fusion import FusionConfig, FusionNet, drop_streams, run
from spinecore.grade.grader import Grader
from spinecore.grade.loss import MISSING, MultiTaskLoss, class_weights
from spinecore.grade.network import GradingNet, NetConfig, compact, thesis, wide
from spinecore.grade.schemes import GradingScheme
from spinecore.models import TrainedModel
from spinecore.streams import SAGITTAL
from spinecore.train.optimisation import Optimisation, adamw_warmup_cosine
from spinecore.train.seeding import seeded
from spinecore.train.transfer import set_training, transfer

log = logging.getLogger(__name__)
PRESETS = {"compact": compact, "wide": wide, "thesis": thesis}
#: Steps between two lines of the training log.
LOG_EVERY = 200


@dataclass
class GradingTraining(Optimisation):
    """Hyper-parameters of one run (all recorded in the model file)."""

    preset: str = "compact"
    dims: int = 2
    branch: str | None = None  # None: the preset's branch point (fc6 for a multi-stream net)
    streams: tuple[str, ...] = ("t2",)
    fusion: str | None = None  # multi-stream nets: one of spinecore.grade.fusion.FUSIONS
    init: str | None = None  # a Siamese model file whose convolutions start the grader (thesis 7.4.2)
    freeze_conv: bool = False  # keep those convolutions fixed


def network_config(scheme: GradingScheme, settings: GradingTraining) -> NetConfig | FusionConfig:
    """The network of ``settings``: a :class:`NetConfig`, or a :class:`FusionConfig` when it reads
    more than the T2 (its towers share Conv1 … FC6, so its branch point is FC6)."""
    config = PRESETS[settings.preset]([t.n_classes for t in scheme.tasks], settings.dims)
    fused = tuple(settings.streams) != ("t2",)
    if fused and settings.branch not in (None, "fc6"):
        raise SpineCoreError(None, f"a multi-stream model branches at fc6, not {settings.branch}")
    if settings.branch or fused:
        config = NetConfig.from_dict({**config.to_dict(), "branch": settings.branch or "fc6"})
    if not fused:
        return config
    try:
        return FusionConfig(config, tuple(settings.streams), settings.fusion or "")
    except ValueError as exc:
        raise SpineCoreError(None, str(exc)) from None


def build_net(config: NetConfig | FusionConfig) -> GradingNet | FusionNet:
    return FusionNet(config) if isinstance(config, FusionConfig) else GradingNet(config)


def augmented_batch(data: DiscSet, index, generator: torch.Generator, streams: tuple[str, ...],
                    augmentation: Augmentation = Augmentation()) -> dict[str, torch.Tensor]:
    """The samples ``index`` of ``data``, augmented: the sagittal streams by one draw of ``augmentation``
    per sample (they stay in register), the axial stream by its own (:data:`~spinecore.grade.augment.AXIAL`);
    then stream dropout (:func:`~spinecore.grade.fusion.drop_streams`) when there is more than one stream."""
    inputs = {s: torch.from_numpy(v) for s, v in data.inputs(index).items() if s in streams}
    transforms = draw(inputs["t2"], generator, augmentation)
    out = {s: apply(x, transforms) for s, x in inputs.items() if s in SAGITTAL}
    if "axial" in inputs:
        out["axial"] = augment(inputs["axial"], generator, AXIAL)
    return drop_streams(out, generator) if len(streams) > 1 else out


def start_net(scheme: GradingScheme, settings: GradingTraining) -> tuple[GradingNet | FusionNet, dict | None]:
    """The untrained net of ``settings``: Glorot weights, then the Siamese convolutions of
    ``settings.init`` when given (:func:`~spinecore.train.transfer.transfer`, whose record is returned)."""
    net = build_net(network_config(scheme, settings))
    if settings.init is None:
        return net, None
    return net, transfer(net, Path(settings.init), settings.freeze_conv)


def train_grader(data: DiscSet, scheme: GradingScheme,
                 settings: GradingTraining) -> tuple[GradingNet | FusionNet, dict | None]:
    """The trained net and the record of its transferred convolutions (``None`` without ``init``)."""
    rng, generator = seeded(settings.seed)
    net, transferred = start_net(scheme, settings)
    return optimise(net, data, scheme, settings, rng, generator, tuple(settings.streams)), transferred


def optimise(net: GradingNet | FusionNet, data, scheme: GradingScheme, settings: Optimisation,
             rng: np.random.Generator, generator: torch.Generator, streams: tuple[str, ...] = ("t2",),
             augmentation: Augmentation = Augmentation()) -> GradingNet | FusionNet:
    """Train ``net`` (in eval mode when returned) on ``data`` (a :class:`DiscSet`, or anything with its
    ``labels`` ``(N, tasks)`` and ``inputs(index)``) with the class-balanced multi-task loss of
    ``scheme``'s tasks (soft ordinal targets for its ordinal tasks with ``settings.ordinal_targets``),
    batches of augmented samples drawn with ``rng`` and ``generator``."""
    criterion = MultiTaskLoss(class_weights(data.labels, [t.n_classes for t in scheme.tasks]),
                              ordinal=[settings.ordinal_targets and t.ordinal for t in scheme.tasks])
    optimiser, schedule = adamw_warmup_cosine(net, settings.learning_rate, settings.weight_decay, settings.steps)
    set_training(net)
    start, running = time.time(), []
    for step in range(settings.steps):
        index = np.sort(rng.choice(len(data), settings.batch_size, replace=len(data) < settings.batch_size))
        x = augmented_batch(data, index, generator, streams, augmentation)
        loss, per_task = criterion(run(net, x), torch.from_numpy(data.labels[index]))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        running.append(per_task.numpy())
        if (step + 1) % LOG_EVERY == 0 or step + 1 == settings.steps:
            mean = np.mean(running, axis=0)
            log.info("step %d/%d  loss %.3f  (%s)  %.0f s", step + 1, settings.steps, mean.sum(),
                     " ".join(f"{t.name} {v:.2f}" for t, v in zip(scheme.tasks, mean)), time.time() - start)
            running = []
    return net.eval()


def train_grading_model(train: DiscSet, scheme: GradingScheme, settings: GradingTraining, command: str,
                        calibration: DiscSet | None = None, data_note: str = "") -> TrainedModel:
    """Train, then fit per-task temperatures on ``calibration`` (:func:`~spinecore.grade.calibration.calibrate`)."""
    net, transferred = train_grader(train, scheme, settings)
    counts = {t.name: np.bincount(train.labels[:, n][train.labels[:, n] != MISSING], minlength=t.n_classes).tolist()
              for n, t in enumerate(scheme.tasks)}
    streams = f"-{'+'.join(net.streams)}-{settings.fusion}" if isinstance(net, FusionNet) else ""
    start = "" if transferred is None else "-siamese-frozen" if settings.freeze_conv else "-siamese"
    start += "-ordinal" if settings.ordinal_targets else ""
    metadata = {
        "model_id": f"grader-{scheme.name}-{settings.preset}{settings.dims}d{streams}{start}-seed{settings.seed}-{settings.steps}",
        "streams": list(net.streams), "fusion": settings.fusion, "command": command, "settings": asdict(settings), "data": data_note,
        "train_discs": len(train), "train_patients": len(set(train.patients)),
        "train_class_counts": counts,
        "train_majority": {t.name: t.values[int(np.argmax(counts[t.name]))] for t in scheme.tasks},
        "transfer": transferred,
    }
    if calibration is not None:
        temperatures = calibrate(Grader(net, scheme, metadata), calibration)
        metadata["calibration"] = {"discs": len(calibration), "patients": len(set(calibration.patients)),
                                   "temperatures": dict(zip(scheme.task_names, temperatures))}
    config = net.config.to_dict() if isinstance(net, FusionNet) else {"net": net.config.to_dict()}
    return TrainedModel("grader", {**config, "scheme": scheme.to_dict()}, net, metadata)
