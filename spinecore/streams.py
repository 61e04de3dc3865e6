"""The names of the input streams of multi-stream grading and of its fusions (importable without torch).

``t2`` is the sagittal T2 on which the discs are found (always the first stream), ``t1`` the
sagittal T1 cut in the T2 disc volume's frame, ``axial`` the axial disc volume
(:mod:`spinecore.extract.streams`, :mod:`spinecore.grade.fusion`).
"""
from __future__ import annotations

STREAMS = ("t2", "t1", "axial")
#: The sagittal streams: one tower with shared weights, augmented together.
SAGITTAL = ("t2", "t1")
#: FC6 features concatenated or summed, or FC8 logits summed (thesis 6.1.2, 6.2.2).
FUSIONS = ("fc6-concat", "fc6-sum", "fc8-sum")


def valid_streams(streams: tuple[str, ...]) -> bool:
    """``t2`` first, then any of the other :data:`STREAMS`, each once."""
    return (bool(streams) and streams[0] == "t2" and len(set(streams)) == len(streams)
            and set(streams) <= set(STREAMS))
