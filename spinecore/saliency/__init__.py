"""Saliency: where in a disc each grade comes from (thesis chapter 5).

>>> from spinecore.saliency import Method, hotspots
>>> maps = hotspots(grader.net, volume.array, {0: 2}, Method.EXCITATION)   # doctest: +SKIP
>>> maps = stream_hotspots(fused.net, {"t2": t2.array, "t1": t1.array}, {0: 2})["t1"]   # doctest: +SKIP

Names and defaults (:mod:`~spinecore.saliency.settings`) import without torch; the rest loads on
first use.
"""
from importlib import import_module

from spinecore.saliency.settings import (DEFAULT_AUGMENTATIONS, DEFAULT_METHOD, HEATMAP_OPACITY, HEATMAP_SHOWN_FROM,
                                         Method)

_LAZY = {"hotspot_boxes": "boxes", "volume_iou": "boxes", "whole_volume_boxes": "boxes",
         "hotspots": "averaged", "scan_heatmap": "averaged", "stream_hotspots": "averaged",
         "backprop": "methods", "excitation": "methods", "guided": "methods"}

__all__ = ["DEFAULT_AUGMENTATIONS", "DEFAULT_METHOD", "HEATMAP_OPACITY", "HEATMAP_SHOWN_FROM", "Method", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = globals()[name] = getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    return value
