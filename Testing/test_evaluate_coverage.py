"""The disc coverage metric (spinecore.evaluate.coverage) on hand-made predictions."""
import numpy as np

from spinecore.evaluate.coverage import SeriesDiscs, coverage, graded_levels

SHAPE = (1, 400, 300)


def _discs(*levels_rows: tuple[str, float]) -> dict:
    return {level: np.array([row, 100.0]) for level, row in levels_rows}


def test_coverage_per_sequence_l5s1_and_pair_agreement():
    graded = {"1": {"L3-L4", "L4-L5", "L5-S1"}, "2": {"L4-L5", "L5-S1"}}
    predictions = [
        SeriesDiscs("1_t1", "1", "t1", SHAPE, _discs(("L3-L4", 100), ("L4-L5", 140), ("L5-S1", 180))),
        # T2 of patient 1 labelled one level too high: same discs, other names
        SeriesDiscs("1_t2", "1", "t2", SHAPE, _discs(("L2-L3", 101), ("L3-L4", 141), ("L4-L5", 181))),
        SeriesDiscs("2_t1", "2", "t1", SHAPE, {}),  # localisation failed
        SeriesDiscs("2_t2", "2", "t2", (1, 300, 300), _discs(("L4-L5", 100), ("L5-S1", 140))),
    ]
    result = coverage(predictions, graded)
    assert result["t1"] == {"share": 0.6, "found": 3, "total": 5}
    assert result["t2"] == {"share": 0.8, "found": 4, "total": 5}
    assert result["l5s1"] == {"share": 0.5, "found": 2, "total": 4}
    # only patient 1's pair is pixel-aligned (same shape): three common discs, none agreeing
    assert result["t1_t2_agreement"] == {"share": 0.0, "found": 0, "total": 3}
    assert "1_t2 L5-S1" in result["missed"] and "2_t1 L4-L5" in result["missed"]


def test_graded_levels_leave_out_patients_with_doubtful_numbering(tmp_path):
    gradings = tmp_path / "gradings.csv"
    gradings.write_text("Patient,IVD label,level\n1,1,L5-S1\n1,2,L4-L5\n2,0,unknown\n2,1,L5-S1\n")
    assert graded_levels(gradings) == {"1": {"L5-S1", "L4-L5"}}


def test_box_coverage_counts_discs_centred_in_their_own_box():
    from spinecore.evaluate.coverage import box_coverage

    spacing = {"7_t1": np.array([0.5, 0.5]), "7_t2": np.array([0.5, 0.5])}
    boxes = {name: {"L4-L5": (180.0, 80.0, 220.0, 160.0), "L5-S1": (260.0, 70.0, 300.0, 150.0)} for name in spacing}
    predictions = [  # centres in mm from the image corner: pixel = mm / 0.5
        SeriesDiscs("7_t1", "7", "t1", SHAPE, {"L4-L5": np.array([100.0, 60.0]), "L5-S1": np.array([140.0, 55.0])}),
        # T2 named one level too high: the disc in the L5-S1 box is called L4-L5
        SeriesDiscs("7_t2", "7", "t2", SHAPE, {"L3-L4": np.array([100.0, 60.0]), "L4-L5": np.array([140.0, 55.0])}),
    ]
    result = box_coverage(predictions, boxes, spacing)
    assert result["t1"] == {"share": 1.0, "found": 2, "total": 2}
    assert result["t2"] == {"share": 0.0, "found": 0, "total": 2}
    assert result["l5s1"] == {"share": 0.5, "found": 1, "total": 2}
    assert result["missed"] == ["7_t2 L4-L5", "7_t2 L5-S1"]
    # the same two discs in both, named differently
    assert result["t1_t2_agreement"] == {"share": 0.0, "found": 0, "total": 2}


def test_sudirman_split_is_patient_level_fixed_and_a_fifth():
    from spinecore.data.sudirman import sudirman_split

    patients = [str(p) for p in range(1, 401)]
    split = sudirman_split(patients)
    assert split == sudirman_split(list(reversed(patients)))
    assert split["train"] | split["validation"] == set(patients) and not split["train"] & split["validation"]
    assert len(split["validation"]) == 80
