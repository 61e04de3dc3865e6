"""The machine's cores, as the cohort runner and the web service share them among their workers."""
from __future__ import annotations

import os


def host_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
