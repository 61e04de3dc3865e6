"""Training the localiser network on reference scans (real masks + phantoms).

Deterministic for a given seed and step count (CPU, fixed thread count).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from spinecore.data.references import IGNORE, TrainingScan, phantom_scans, real_scans, to_training
from spinecore.data.splits import VALIDATION
from spinecore.errors import ModelError
from spinecore.localise import Localiser
from spinecore.localise.network import CHANNELS, LocaliserNet
from spinecore.models import TrainedModel
from spinecore.train.pseudolabels import PSEUDO, pseudo_labelled_scans
from spinecore.train.seeding import seeded

log = logging.getLogger(__name__)

#: Seed of the first training phantom.
PHANTOM_SEEDS = 1000


@dataclass
class LocaliserTraining:
    """Hyper-parameters of one training run (all recorded in the model file)."""

    seed: int = 0
    steps: int = 6000
    batch_size: int = 8
    crop: tuple[int, int] = (256, 176)
    learning_rate: float = 2e-3
    widths: tuple[int, ...] = (8, 16, 32, 64, 128)
    phantoms: int = 30
    #: further phantom patients (the seeds after ``phantoms``') with every disc randomly narrowed
    #: (:func:`~spinecore.data.references.random_narrowing`)
    narrowed_phantoms: int = 0
    #: extra cross-entropy weight on voxels within one voxel of a label edge (0: every voxel alike)
    edge_weight: float = 0.0
    #: share of training crops drawn from each dataset
    mix: dict[str, float] = field(default_factory=lambda: {
        "spider_space": 0.35, "vb1": 0.15, "vb2": 0.12, "ivd": 0.06, "phantom": 0.32})
    #: a localiser model file whose weights start the run (None: random initialisation)
    init: str | None = None
    #: share of crops drawn from the ``init`` model's pseudo-labelled mid-sagittal images
    #: (:mod:`spinecore.train.pseudolabels`; 0: none); the other datasets share the rest
    pseudo_share: float = 0.0


def _slice_pool(scan: TrainingScan) -> tuple[np.ndarray, np.ndarray]:
    positive = ((scan.target == 1).reshape(scan.target.shape[0], -1).any(axis=1))
    return np.flatnonzero(positive), np.arange(scan.target.shape[0])


def _crop(scan: TrainingScan, k: int, size: tuple[int, int], rng: np.random.Generator):
    image, target = scan.image[k], scan.target[k]
    rows, cols = image.shape
    positives = np.argwhere((target[:2] == 1).any(axis=0))
    centre = positives[rng.integers(len(positives))] if len(positives) else np.array([rows // 2, cols // 2])
    centre = centre + rng.integers([-64, -40], [65, 41])
    top, left = (int(c - s // 2) for c, s in zip(centre, size))
    out_image = np.zeros(size, dtype=np.float32)
    out_target = np.zeros((len(CHANNELS),) + size, dtype=np.uint8)
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + size[0], rows), min(left + size[1], cols)
    if r1 > r0 and c1 > c0:
        out_image[r0 - top:r1 - top, c0 - left:c1 - left] = image[r0:r1, c0:c1]
        out_target[:, r0 - top:r1 - top, c0 - left:c1 - left] = target[:, r0:r1, c0:c1]
    return out_image, out_target


def augment(images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator):
    """Random rotation/scale (images bilinear, targets nearest) and MR-like intensity changes:
    gamma, inversion (T1-like contrast), blur by down/up-sampling, noise. ``images`` (B,1,H,W)
    in [0, 1]; ``targets`` (B,C,H,W) float with :data:`IGNORE` kept."""
    n = images.shape[0]
    u = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    angle = (u(n) - 0.5) * math.radians(30)
    scale = 0.8 + 0.4 * u(n)
    aspect = 0.9 + 0.2 * u(n)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos / (scale * aspect), -sin / scale, torch.zeros(n)], 1),
                         torch.stack([sin / (scale * aspect), cos / scale, torch.zeros(n)], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", align_corners=False)
    targets = F.grid_sample(targets, grid, mode="nearest", align_corners=False)
    images = images.clamp(0, 1) ** torch.exp((u(n, 1, 1, 1) - 0.5) * 1.4)
    invert = u(n, 1, 1, 1) < 0.15
    images = torch.where(invert, 1 - images, images)
    for i in range(n):
        if u(1).item() < 0.35:
            factor = 1 + u(1).item()
            size = [max(8, int(s / factor)) for s in images.shape[-2:]]
            small = F.interpolate(images[i:i + 1], size=size, mode="bilinear", align_corners=False)
            images[i:i + 1] = F.interpolate(small, size=images.shape[-2:], mode="bilinear", align_corners=False)
    images = images * (0.8 + 0.4 * u(n, 1, 1, 1)) + torch.randn(images.shape, generator=generator) * 0.06 * u(n, 1, 1, 1)
    return images, targets


def masked_loss(logits: torch.Tensor, targets: torch.Tensor, edge_weight: float = 0.0) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice per channel, both over known voxels only; a known voxel
    within one voxel of a label edge (its 3 × 3 neighbourhood holds both labels, unknown neighbours
    counting as 0) weighs ``1 + edge_weight`` in the cross-entropy. ``logits`` and ``targets`` are
    (B, C, H, W)."""
    known = (targets != IGNORE).float()
    truth = torch.where(targets == IGNORE, torch.zeros_like(targets), targets)
    weight = known
    if edge_weight:
        edge = (F.max_pool2d(truth, 3, 1, 1) != -F.max_pool2d(-truth, 3, 1, 1)).float()
        weight = known * (1 + edge_weight * edge)
    bce = F.binary_cross_entropy_with_logits(logits, truth, reduction="none")
    bce = (bce * weight).sum(dim=(0, 2, 3)) / weight.sum(dim=(0, 2, 3)).clamp(min=1)
    prob = torch.sigmoid(logits) * known
    overlap = (prob * truth).sum(dim=(0, 2, 3))
    dice = 1 - (2 * overlap + 1) / (prob.sum(dim=(0, 2, 3)) + (truth * known).sum(dim=(0, 2, 3)) + 1)
    has_known = (known.sum(dim=(0, 2, 3)) > 0).float()
    return ((bce + dice) * has_known).sum() / has_known.sum().clamp(min=1)


def _start(settings: LocaliserTraining, data_root: Path) -> tuple[LocaliserNet, list[TrainingScan], dict]:
    """The network (initialised from ``settings.init`` when given) and the pseudo-labelled scans."""
    if settings.init is None:
        return LocaliserNet(settings.widths), [], {}
    teacher = Localiser.load(Path(settings.init))
    network = LocaliserNet(settings.widths)
    try:
        network.load_state_dict(teacher.network.state_dict())
    except RuntimeError:
        raise ModelError(settings.init, "its network widths differ from this run's") from None
    if not settings.pseudo_share:
        return network, [], {}
    scans, counts = pseudo_labelled_scans(data_root, teacher)
    return network, scans, counts


def train_localiser(data_root: Path, settings: LocaliserTraining, command: str) -> TrainedModel:
    """Train on the real-data pack's training split plus ``settings.phantoms`` phantoms and
    ``settings.narrowed_phantoms`` narrowed ones (and, with
    ``settings.pseudo_share``, the pseudo-labelled mid-sagittal images of our training patients)."""
    rng, generator = seeded(settings.seed)
    started = time.time()
    model, pseudo, pseudo_counts = _start(settings, data_root)
    first_narrowed = PHANTOM_SEEDS + settings.phantoms
    references = (real_scans(data_root, "train") + phantom_scans(range(PHANTOM_SEEDS, first_narrowed))
                  + phantom_scans(range(first_narrowed, first_narrowed + settings.narrowed_phantoms), narrowed=True))
    scans = [to_training(s) for s in references] + pseudo
    mix = {d: share * (1 - settings.pseudo_share) for d, share in settings.mix.items()}
    mix[PSEUDO] = settings.pseudo_share
    log.info("training on %d scans (%s) after %.0f s", len(scans),
             ", ".join(f"{d}: {sum(s.dataset == d for s in scans)}" for d in mix), time.time() - started)
    groups = {d: [s for s in scans if s.dataset == d] for d in mix}
    groups = {d: g for d, g in groups.items() if g and mix[d] > 0}
    names = list(groups)
    weights = np.array([mix[d] for d in names]) / sum(mix[d] for d in names)
    pools = {id(s): _slice_pool(s) for s in scans}
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, settings.learning_rate, total_steps=settings.steps)
    model.train()
    running = []
    for step in range(1, settings.steps + 1):
        images, targets = [], []
        for _ in range(settings.batch_size):
            group = groups[names[rng.choice(len(names), p=weights)]]
            scan = group[rng.integers(len(group))]
            positive, every = pools[id(scan)]
            pool = positive if len(positive) and rng.random() < 0.85 else every
            image, target = _crop(scan, int(pool[rng.integers(len(pool))]), settings.crop, rng)
            images.append(image)
            targets.append(target)
        x = torch.from_numpy(np.stack(images))[:, None]
        y = torch.from_numpy(np.stack(targets)).float()
        x, y = augment(x, y, generator)
        loss = masked_loss(model(x), y, settings.edge_weight)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        running.append(loss.item())
        if step % 100 == 0 or step == settings.steps:
            log.info("step %d/%d loss %.4f (%.0f s)", step, settings.steps, np.mean(running), time.time() - started)
            running = []
    metadata = {"command": command, "training": asdict(settings), "minutes": round((time.time() - started) / 60, 1),
                "validation_split": {k: list(v) for k, v in VALIDATION.items()},
                "training_scans": [s.name for s in references] + [s.name for s in pseudo],
                "pseudo_labels": pseudo_counts, "channels": list(CHANNELS)}
    return TrainedModel("localiser", {"widths": list(settings.widths)}, model, metadata)
