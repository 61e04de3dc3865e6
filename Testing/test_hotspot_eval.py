"""Phantom lesion cases for hotspot evaluation, the evaluation's table, and the bundled phantom
grader's hotspots on them."""
import numpy as np
import pytest
import torch

from spinecore.grade import GENODISC, Grader
from spinecore.grade.network import GradingNet, compact
from spinecore.models import models_dir
from spinecore.saliency import DEFAULT_METHOD, Method, hotspot_boxes, hotspots, volume_iou, whole_volume_boxes
from spinecore.evaluate.hotspots import (BOX_VARIANTS, LESION_CASES, PERCENTILES, PHANTOM_GRADER,
                                         evaluate_lesion_hotspots, lesion_cases)
from spinecore.report.evaluation import hotspot_table


@pytest.fixture(scope="module")
def cases():
    return lesion_cases([902])


def test_each_lesion_case_has_true_boxes_in_its_disc_volume(cases):
    assert sorted(c.lesion for c in cases) == sorted(LESION_CASES)
    for case in cases:
        boxed = [b for b in case.reference if b is not None]
        assert boxed, case.lesion
        rows = np.array([[b[0], b[2]] for b in boxed])
        if case.lesion == "endplate_defect":  # the upper vertebra's lower endplate: upper half
            assert rows.mean() < 56
        if case.lesion == "marrow":  # the lower vertebra's marrow: lower half
            assert rows.mean() > 56
        if case.lesion in ("stenosis", "herniation"):  # behind the disc: posterior (right) half
            assert np.mean([[b[1], b[3]] for b in boxed]) > 112


def test_evaluation_reports_every_lesion_method_variant_and_percentile(cases):
    torch.manual_seed(0)
    grader = Grader(GradingNet(compact([t.n_classes for t in GENODISC.tasks])), GENODISC, {"model_id": "untrained"})
    metrics = evaluate_lesion_hotspots(grader, cases, augmentations=2)
    assert set(metrics["lesions"]) == set(LESION_CASES)
    for lesion in metrics["lesions"].values():
        assert lesion["cases"] == 1 and 0 < lesion["baseline_iou"] < 0.2
        for method in Method:
            for variant in BOX_VARIANTS:
                for p in PERCENTILES:
                    cell = lesion["methods"][method.value][variant][str(p)]
                    assert 0 <= cell["iou"] <= 1
                    assert cell["times_baseline"] == pytest.approx(cell["iou"] / lesion["baseline_iou"], abs=0.05)
    table = hotspot_table(metrics)
    lowest = [line for line in table.splitlines() if line.startswith("| lowest")]
    assert len(lowest) == len(BOX_VARIANTS)
    first = min(s["methods"]["backprop"]["hottest_region"]["90.0"]["times_baseline"] for s in metrics["lesions"].values())
    assert lowest[0].split("|")[4].strip() == f"×{first}"


def test_bundled_phantom_grader_boxes_each_lesion_better_than_the_whole_volume(cases):
    """Default method and box rule on one phantom per lesion (single cases vary; the full
    evaluation, 10 cases and 150 augmentations, is in Resources/Models/phantom_grader.md)."""
    grader = Grader.load(models_dir() / PHANTOM_GRADER)
    ratios = {}
    for case in cases:
        task = grader.scheme.task_names.index(LESION_CASES[case.lesion][1])
        heatmap = hotspots(grader.net, case.volume.array, {task: 1}, DEFAULT_METHOD, augmentations=20, seed=case.seed)
        baseline = volume_iou(whole_volume_boxes(case.volume.array.shape, case.volume.present), case.reference)
        ratios[case.lesion] = volume_iou(hotspot_boxes(heatmap[task]), case.reference) / baseline
    assert min(ratios.values()) > 2 and np.mean(list(ratios.values())) > 5, ratios
