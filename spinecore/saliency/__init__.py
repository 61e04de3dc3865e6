"""Saliency: where in a disc each grade comes from (thesis chapter 5).

>>> from spinecore.saliency import Method, hotspots
>>> maps = hotspots(grader.net, volume.array, {0: 2}, Method.EXCITATION)   # doctest: +SKIP
"""
from spinecore.saliency.boxes import hotspot_boxes, slice_ious, volume_iou, whole_volume_boxes
from spinecore.saliency.hotspots import DEFAULT_AUGMENTATIONS, hotspots, scan_heatmap
from spinecore.saliency.methods import DEFAULT_METHOD, Method, backprop, excitation, guided

__all__ = ["DEFAULT_AUGMENTATIONS", "DEFAULT_METHOD", "Method", "backprop", "excitation", "guided", "hotspot_boxes",
           "hotspots", "scan_heatmap", "slice_ious", "volume_iou", "whole_volume_boxes"]
