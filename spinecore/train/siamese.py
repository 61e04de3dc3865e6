"""Siamese pretraining (thesis 7.3): same-subject / different-subject pairs of vertebral bodies and
discs, contrastive loss on FC7 plus class-balanced level losses (eq. 7.1–7.6).

Deterministic for a given seed (CPU, fixed thread count). Deviations from thesis 7.3.5.2, for a CPU
budget: AdamW with cosine decay, the compact 2-D net, bodies and discs in alternate steps, and a head
stage after it (:func:`train_heads`): FC6–FC7 trained on the frozen convolutions' output of the
unaugmented volumes by an InfoNCE loss over batches of one level (each volume against its subject's
other scan and every other subject's in the batch), many more pairs per step than the whole tower can
afford, then the level heads fitted anew.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from spinecore.data.pairs import PositiveBatches, StructureSet, sample_pairs
from spinecore.grade.augment import Augmentation, augment
from spinecore.grade.loss import class_weights
from spinecore.grade.siamese import (
    Kind,
    SiameseNet,
    contrastive_loss,
    load_siamese,
    pair_distance,
    siamese_config,
)
from spinecore.models import TrainedModel
from spinecore.train.optimisation import adamw_warmup_cosine
from spinecore.train.seeding import seeded

log = logging.getLogger(__name__)
#: The vertebral-body augmentation of thesis 7.3.5.1 (discs keep the grading augmentation, 4.2.3.2).
BODY_AUGMENTATION = Augmentation(rotation_deg=15.0, shift_cols=48, shift_rows=24, shift_slices=2, scale=(0.9, 1.1),
                                 intensity=0.2)
AUGMENTATIONS = {Kind.BODY: BODY_AUGMENTATION, Kind.DISC: Augmentation()}
#: Grey levels (of [0, 1]) where a random contrast curve (:func:`random_contrast`) takes a random value.
CONTRAST_KNOTS = 5
#: Full-batch steps and learning rate of fitting a level head anew after the head stage (:func:`train_heads`).
LEVEL_REFIT_STEPS, LEVEL_REFIT_LEARNING_RATE = 300, 1e-2


@dataclass
class SiameseTraining:
    """Hyper-parameters of one run (all recorded in the model file). ``margin``: of the contrastive
    loss, between unit-length embeddings."""

    seed: int = 0
    steps: int = 2000
    pairs_per_step: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 5e-4
    margin: float = 1.0
    contrast: float = 0.0  # share of volumes given a random contrast curve (random_contrast)
    init: str | None = None  # Siamese model file whose tower starts the run
    head_steps: int = 0  # steps of the head stage (train_heads), bodies and discs in turn
    head_pairs_per_step: int = 64  # positive pairs (subjects) of one level per head step (PositiveBatches)
    head_learning_rate: float = 1e-3
    head_temperature: float = 0.05  # of the head stage's InfoNCE loss (_info_nce)


def random_contrast(x: torch.Tensor, generator: torch.Generator, share: float) -> torch.Tensor:
    """``x`` ``(n, slices, rows, cols)`` in [0, 1] with each volume, with probability ``share``, remapped
    through its own random piecewise-linear curve (values drawn uniformly in [0, 1] at
    :data:`CONTRAST_KNOTS` evenly spaced grey levels, not necessarily rising), so the two volumes of a
    pair differ in contrast as a T1 and a T2 do and the tower has to match them by shape. Zero
    (outside the image) stays zero."""
    if share == 0:  # draws nothing: runs without it keep the random stream of earlier versions
        return x
    out = x.clone()
    for i in torch.nonzero(torch.rand(len(x), generator=generator) < share).flatten().tolist():
        values = torch.rand(CONTRAST_KNOTS, generator=generator)
        grey = x[i].clamp(0.0, 1.0) * (CONTRAST_KNOTS - 1)
        low = grey.floor().long().clamp(max=CONTRAST_KNOTS - 2)
        mapped = values[low] + (grey - low) * (values[low + 1] - values[low])
        out[i] = torch.where(x[i] > 0, mapped, x[i])
    return out


def _info_nce(features: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE loss of ``n`` positive pairs, the first half of ``features`` ``(2n, fc)`` against the second:
    each volume has to pick its own subject's other volume among the other half's ``n`` by cosine
    similarity / ``temperature``, both ways round (van den Oord et al. 2018; Chen et al. 2020)."""
    embedding = F.normalize(features, dim=1)
    n = len(embedding) // 2
    logits = embedding[:n] @ embedding[n:].T / temperature
    target = torch.arange(n)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def _step_loss(net: SiameseNet, data: StructureSet, settings: SiameseTraining, rng, generator,
               weights: torch.Tensor) -> tuple[torch.Tensor, float]:
    first, second, same = sample_pairs(data, settings.pairs_per_step, rng)
    index = np.concatenate([first, second])
    x = torch.from_numpy(data.float_volumes(index))
    x = augment(random_contrast(x, generator, settings.contrast), generator, AUGMENTATIONS[data.kind])
    features = net.features(x, data.kind)
    embedding = F.normalize(features, dim=1)
    a, b = embedding[: len(first)], embedding[len(first):]
    contrastive = contrastive_loss(pair_distance(a, b), torch.from_numpy(same), settings.margin)
    levels = torch.from_numpy(data.level_index()[index])
    level_loss = F.cross_entropy(net.levels(features, data.kind), levels, weight=weights)
    return contrastive + level_loss, contrastive.item()


def _level_weights(net: SiameseNet, sets: dict[Kind, StructureSet]) -> dict[Kind, torch.Tensor]:
    return {k: class_weights(data.level_index()[:, None], (net.level_heads[k.value].out_features,))[0]
            for k, data in sets.items()}


def _run(steps: int, kinds: list[Kind], step_loss, optimiser, schedule=None, stage: str = "step") -> None:
    """``steps`` optimiser steps on ``step_loss(kind)``, the kinds in turn, logging every 100."""
    start, running = time.time(), []
    for step in range(steps):
        loss, contrastive = step_loss(kinds[step % len(kinds)])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if schedule is not None:
            schedule.step()
        running.append((loss.item(), contrastive))
        if (step + 1) % 100 == 0 or step + 1 == steps:
            total, pairs = np.mean(running, axis=0)
            log.info("%s %d/%d  loss %.3f  (contrastive %.3f)  %.0f s", stage, step + 1, steps, total, pairs,
                     time.time() - start)
            running = []


def train_siamese(sets: dict[Kind, StructureSet], settings: SiameseTraining) -> SiameseNet:
    """Train on ``sets`` (bodies, discs or both; each kind in turn, eq. 7.5 / 7.6), from the tower of
    ``settings.init`` when given (with 0 steps, that tower as it is), then its heads
    (:func:`train_heads`) for ``settings.head_steps``; with neither, only its references are made anew."""
    rng, generator = seeded(settings.seed)
    net = load_siamese(settings.init)[0] if settings.init else SiameseNet(siamese_config())
    sets = {kind: sets[kind] for kind in Kind if kind in sets}  # bodies first, then discs
    weights = _level_weights(net, sets)
    if settings.steps:
        optimiser, schedule = adamw_warmup_cosine(net, settings.learning_rate, settings.weight_decay, settings.steps)
        net.train()
        _run(settings.steps, list(sets),
             lambda kind: _step_loss(net, sets[kind], settings, rng, generator, weights[kind]), optimiser, schedule)
    if settings.head_steps:
        train_heads(net, sets, settings, rng, weights)
    return net.eval()


@torch.no_grad()
def _pooled(net: SiameseNet, data: StructureSet, batch: int = 32) -> torch.Tensor:
    return torch.cat([net.pooled(torch.from_numpy(data.float_volumes(slice(start, start + batch))), data.kind)
                      for start in range(0, len(data), batch)])


def train_heads(net: SiameseNet, sets: dict[Kind, StructureSet], settings: SiameseTraining, rng: np.random.Generator,
                weights: dict[Kind, torch.Tensor]) -> None:
    """The head stage: FC6–FC7 of each kind of ``sets`` trained on the frozen convolutions'
    :meth:`~spinecore.grade.siamese.SiameseNet.pooled` output of the unaugmented volumes (computed once)
    by the InfoNCE loss (:func:`_info_nce`) alone, ``settings.head_steps`` AdamW steps, the kinds in
    turn, each on a batch of ``settings.head_pairs_per_step`` subjects' positive pairs of one level
    (:class:`~spinecore.data.pairs.PositiveBatches`); then each level head is fitted anew to the new
    FC7 (:func:`_refit_level_heads`). On the training subjects held out of it, InfoNCE beat the
    contrastive loss of the first stage on 256 random pairs a step by 2.7–3.5 points of per-pair AUC on
    real bodies and discs (each with its own size weight), and a level loss reaching FC7 here had cost
    2–4 points on Sudirman."""
    kinds = list(sets)
    net.eval()
    pooled = {kind: _pooled(net, sets[kind]) for kind in kinds}
    log.info("head stage: convolutions' output of %s",
             ", ".join(f"{len(inputs)} {kind.value} volumes" for kind, inputs in pooled.items()))
    params = [p for kind in kinds for p in net.fully_connected[kind.value].parameters()]
    optimiser = torch.optim.AdamW(params, lr=settings.head_learning_rate, weight_decay=settings.weight_decay)
    batches = {kind: PositiveBatches(sets[kind]) for kind in kinds}
    net.train()

    def step_loss(kind: Kind) -> tuple[torch.Tensor, float]:
        first, second = batches[kind].sample(settings.head_pairs_per_step, rng)
        loss = _info_nce(net.head(pooled[kind][np.concatenate([first, second])], kind), settings.head_temperature)
        return loss, loss.item()

    _run(settings.head_steps, kinds, step_loss, optimiser, stage="head step")
    net.eval()
    _refit_level_heads(net, pooled, sets, weights)


def _refit_level_heads(net: SiameseNet, pooled: dict[Kind, torch.Tensor], sets: dict[Kind, StructureSet],
                       weights: dict[Kind, torch.Tensor]) -> None:
    """Each kind's level head fitted to the FC7 of every training volume (class-balanced, full batch,
    :data:`LEVEL_REFIT_STEPS` AdamW steps), FC7 kept as it is."""
    for kind, inputs in pooled.items():
        with torch.no_grad():
            features = net.head(inputs, kind)
        targets = torch.from_numpy(sets[kind].level_index())
        optimiser = torch.optim.AdamW(net.level_heads[kind.value].parameters(), lr=LEVEL_REFIT_LEARNING_RATE)
        for _ in range(LEVEL_REFIT_STEPS):
            loss = F.cross_entropy(net.levels(features, kind), targets, weight=weights[kind])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        log.info("%s level head fitted anew: loss %.3f", kind.value, loss.item())


def siamese_model(net: SiameseNet, sets: dict[Kind, StructureSet], settings: SiameseTraining, command: str,
                  threshold: float, threshold_note: str, data_note: str = "",
                  started_from: dict | None = None) -> TrainedModel:
    """The trained net as a model file: ``threshold`` is the score (:mod:`spinecore.grade.identity`)
    below which two studies are called the same subject, ``threshold_note`` says what it was fitted on;
    ``started_from``: the metadata of the ``settings.init`` model (its id and command are kept)."""
    model_id = (f"siamese-seed{settings.seed}-{settings.steps}" if started_from is None
                else f"{started_from.get('model_id')}+{settings.steps}")
    if settings.head_steps:
        model_id += f"+heads{settings.head_steps}"
    metadata = {"model_id": model_id, "command": command,
                "settings": asdict(settings), "data": data_note, "same_subject_below": threshold,
                "threshold_fitted_on": threshold_note,
                "train": {k.value: {"volumes": len(s), "subjects": len(set(s.subjects.tolist())),
                                    "scans": len(set(s.scans.tolist()))} for k, s in sets.items()}}
    if started_from is not None:
        metadata["started_from"] = {key: started_from.get(key) for key in ("model_id", "command")}
    return TrainedModel("siamese", {"net": net.config.to_dict()}, net, metadata)
