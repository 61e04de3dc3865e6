"""The optimiser of every training loop: AdamW, a linear warm-up, then cosine decay to zero."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

#: Optimiser steps of the linear warm-up.
WARMUP_STEPS = 100


@dataclass
class Optimisation:
    """What every grading run (disc volumes, raw volume) shares: the seed and the optimiser's budget."""

    seed: int = 0
    steps: int = 4000
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 5e-4
    #: soft ordinal targets (:func:`~spinecore.grade.loss.soft_ordinal_targets`) for the scheme's ordinal tasks
    ordinal_targets: bool = False


def adamw_warmup_cosine(net: torch.nn.Module, learning_rate: float, weight_decay: float,
                        steps: int) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW on ``net``'s trainable parameters (frozen ones, ``requires_grad`` False, are left out) and
    its schedule (call ``schedule.step()`` after each of the ``steps`` optimiser steps)."""
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / WARMUP_STEPS) * 0.5 * (1 + math.cos(math.pi * step / steps)))
    return optimiser, schedule
