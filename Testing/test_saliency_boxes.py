"""Boxes from hotspots and their IoU (thesis 5.3.2)."""
import numpy as np
import pytest

from spinecore.saliency import hotspot_boxes, volume_iou, whole_volume_boxes
from spinecore.saliency.boxes import box_of


def test_box_of_a_mask():
    mask = np.zeros((10, 20), bool)
    mask[2:5, 7:12] = True
    assert box_of(mask) == (2, 7, 5, 12) and box_of(np.zeros((3, 3), bool)) is None


def test_percentile_boxes_find_the_hot_block():
    heatmap = np.zeros((9, 112, 224))
    heatmap[3:6, 40:52, 100:131] = 1.0  # 0.49 % of the volume
    heatmap[0:3, 80:100, 10:40] = 0.5   # 0.8 %: holds the 99th percentile, so it is not above it
    boxes = hotspot_boxes(heatmap, percentile=99.0)
    assert boxes[4] == (40, 100, 52, 131) and boxes[0] is None and boxes[6] is None


def test_hottest_region_boxes_ignore_speckle_away_from_the_finding():
    heatmap = np.zeros((9, 112, 224))
    heatmap[3:6, 40:52, 100:131] = 1.0     # the finding
    heatmap[4, 100, 5] = heatmap[2, 5, 200] = 0.9  # two hot specks elsewhere, not touching it
    assert hotspot_boxes(heatmap, percentile=99.0)[4] == (40, 100, 52, 131)
    assert hotspot_boxes(heatmap, percentile=99.0)[2] is None
    whole_mask = hotspot_boxes(heatmap, percentile=99.0, hottest_region=False)
    assert whole_mask[4] == (40, 5, 101, 131) and whole_mask[2] == (5, 200, 6, 201)
    # the region with the most heat wins, not the largest one
    heatmap[0, 0:40, 0:60] = 0.2
    assert hotspot_boxes(heatmap, percentile=90.0)[0] is None


def test_volume_iou_by_hand():
    predicted = [(0, 0, 10, 10), None, (0, 0, 4, 4)]
    reference = [(5, 0, 15, 10), None, None]
    # slice 1: intersection 50, union 150; slice 3: no reference → IoU 0
    assert volume_iou(predicted, reference) == pytest.approx(50 / (150 + 16))
    whole = whole_volume_boxes((3, 20, 10), present=[True, False, True])
    assert whole == [(0, 0, 20, 10), None, (0, 0, 20, 10)]
    assert volume_iou(whole, reference) == pytest.approx(100 / 400)
