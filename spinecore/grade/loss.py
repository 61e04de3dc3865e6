"""Multi-task, class-balanced loss that ignores missing labels (thesis 4.2.1), with optional soft
ordinal targets for ordered grades (SORD: Díaz & Marathe, CVPR 2019)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Label value meaning "not graded" in a ``(N, tasks)`` label array.
MISSING = -1
#: Cap on a class weight relative to the most frequent class: Modic types 1 and 3 have a
#: handful of examples, and 1/freq (eq. 4.3) would let three discs dominate the task.
MAX_WEIGHT_RATIO = 20.0
#: Soft ordinal target of grade y: class c gets weight exp(-ORDINAL_SHARPNESS·(c - y)²), normalised;
#: at 2 the true grade keeps 78 % of a five-grade target and each neighbour 11 %.
ORDINAL_SHARPNESS = 2.0


def soft_ordinal_targets(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``(N, n_classes)`` target distributions of class indices ``labels`` ``(N,)``: mass on the
    true grade and, falling off with the squared distance, on its neighbours."""
    distance = torch.arange(n_classes, dtype=torch.float32)[None, :] - labels[:, None].float()
    return torch.softmax(-ORDINAL_SHARPNESS * distance ** 2, dim=1)


def class_weights(labels: np.ndarray, n_classes: tuple[int, ...]) -> list[torch.Tensor]:
    """α_c = freq(c)^-1 per task (eq. 4.3), from the valid labels of ``labels`` ``(N, tasks)``,
    capped at :data:`MAX_WEIGHT_RATIO` × the smallest weight; unseen classes get weight 0."""
    weights = []
    for t, n in enumerate(n_classes):
        valid = labels[:, t][labels[:, t] != MISSING]
        counts = np.bincount(valid, minlength=n).astype(np.float64)
        w = np.zeros(n)
        seen = counts > 0
        w[seen] = 1.0 / counts[seen]
        if seen.any():
            w[seen] = np.minimum(w[seen], MAX_WEIGHT_RATIO * w[seen].min())
            w *= seen.sum() / w.sum()
        weights.append(torch.tensor(w, dtype=torch.float32))
    return weights


class MultiTaskLoss(nn.Module):
    """Σ_t ω_t L_t (eq. 4.2), each L_t a class-weighted cross-entropy (eq. 4.4) over the samples
    whose task-t label is not :data:`MISSING`; a task with no labels in the batch adds 0. Tasks
    marked in ``ordinal`` take :func:`soft_ordinal_targets` instead of one-hot ones (each sample
    still weighted by its true class's α, and the sum divided by those weights, as for one-hot)."""

    def __init__(self, weights: list[torch.Tensor], task_weights: list[float] | None = None,
                 ordinal: list[bool] | None = None):
        super().__init__()
        for t, w in enumerate(weights):
            self.register_buffer(f"alpha{t}", w)
        self.task_weights = task_weights or [1.0] * len(weights)
        self.ordinal = ordinal or [False] * len(weights)

    def forward(self, logits: list[torch.Tensor], labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Total loss and the per-task losses ``(tasks,)``."""
        per_task = []
        for t, task_logits in enumerate(logits):
            valid = labels[:, t] != MISSING
            if not valid.any():
                per_task.append(task_logits.sum() * 0.0)
                continue
            alpha, target = getattr(self, f"alpha{t}"), labels[valid, t]
            if self.ordinal[t]:
                sample_weight = alpha[target]
                soft = soft_ordinal_targets(target, task_logits.shape[1])
                nll = -(soft * F.log_softmax(task_logits[valid], dim=1)).sum(dim=1)
                per_task.append((sample_weight * nll).sum() / sample_weight.sum().clamp_min(1e-12))
            else:
                per_task.append(F.cross_entropy(task_logits[valid], target, weight=alpha))
        per_task = torch.stack(per_task)
        return (per_task * per_task.new_tensor(self.task_weights)).sum(), per_task.detach()
