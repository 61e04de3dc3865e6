"""One seed → the same weights: seeded generators and a fixed thread count for every training run."""
from __future__ import annotations

import numpy as np
import torch

#: Threads of every training run: float sums depend on the thread count, so fixing it lets a
#: seed reproduce the same weights on any machine.
TRAINING_THREADS = 2


def seeded(seed: int) -> tuple[np.random.Generator, torch.Generator]:
    """Seed torch's global generator, fix the thread count, and return a NumPy and a torch
    generator drawn from ``seed``."""
    torch.set_num_threads(TRAINING_THREADS)
    torch.manual_seed(seed)
    return np.random.default_rng(seed), torch.Generator().manual_seed(seed)
