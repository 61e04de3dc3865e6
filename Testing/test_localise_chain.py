"""Chain-model labelling: the spinal-shape prior keeps labels right around missed and extra detections."""
import numpy as np

from spinecore.localise.chain import Detection, label_chain, typical_spacing

SPACING = 38.0


def _column(n: int, l5_index: int, start=0.0) -> list[Detection]:
    """``n`` bodies straight down the image; the one at ``l5_index`` sits on the L5-S1 disc."""
    return [Detection(np.array([start + i * SPACING, 50.0]), 0.95,
                      0.9 if i == l5_index else 0.02, 0.9 if i == l5_index + 1 else 0.02) for i in range(n)]


def test_full_lumbar_view_is_labelled_from_the_anchor():
    detections = _column(8, l5_index=6)
    labels, confidence = label_chain(detections, typical_spacing(detections, default=38.0))
    assert [labels[i] for i in range(8)] == ["T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    assert confidence > 0.9


def test_missed_vertebra_leaves_a_gap_not_a_shift():
    detections = _column(8, l5_index=6)
    del detections[3]  # L2 not detected
    labels, _ = label_chain(detections, SPACING)
    assert [labels[i] for i in range(7)] == ["T11", "T12", "L1", "L3", "L4", "L5", "S1"]


def test_extra_fragment_is_dropped():
    detections = _column(7, l5_index=5)
    fragment = Detection(np.array([2 * SPACING + 12.0, 55.0]), 0.55, 0.02, 0.02)
    detections.insert(3, fragment)
    labels, _ = label_chain(detections, SPACING)
    assert 3 not in labels
    assert [labels[i] for i in (0, 1, 2, 4, 5, 6, 7)] == ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]


def test_anchor_moves_every_label():
    # the same geometry with the anchor one body higher shifts all labels down by one level
    low = label_chain(_column(6, l5_index=4), SPACING)[0]
    high = label_chain(_column(6, l5_index=3), SPACING)[0]
    assert low[4] == "L5" and high[3] == "L5" and high[4] == "S1"
    assert low[0] == "L1" and high[0] == "L2"


def test_ambiguous_anchor_lowers_confidence():
    detections = _column(6, l5_index=4)
    clear = label_chain(detections, SPACING)[1]
    vague = [Detection(d.centre, d.body, 0.5 if d.l5s1_below > 0.5 else d.l5s1_below,
                       0.5 if d.l5s1_above > 0.5 else d.l5s1_above) for d in detections]
    assert label_chain(vague, SPACING)[1] < clear
