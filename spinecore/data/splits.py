"""Our patient-level validation splits of the real-data pack (never trained on)."""
from __future__ import annotations

import random

#: Reference scans held out from localiser training, per dataset. lumbar_vb vb1 10/11 are one subject.
VALIDATION = {
    "spider_space": ("7", "41", "81", "129", "166", "234"),
    "vb2": ("05", "12", "16"),
    "vb1": ("10", "11"),
    "ivd": ("20",),
}
#: The grading validation split: the localiser's SPIDER validation patients plus
#: SPIDER_VALIDATION_EXTRA more drawn with SPIDER_SPLIT_SEED from the rest (about 20 % of the 173).
SPIDER_SPLIT_SEED = 2026
SPIDER_VALIDATION_EXTRA = 29


def spider_split(patients: list[str]) -> set[str]:
    """The SPIDER patients (of ``patients``) in the grading validation split."""
    fixed = set(VALIDATION["spider_space"])
    rest = sorted(set(patients) - fixed, key=int)
    return fixed | set(random.Random(SPIDER_SPLIT_SEED).sample(rest, SPIDER_VALIDATION_EXTRA))
