"""Hotspots of multi-stream graders: one map per stream a disc was graded with, each mapped back to
its own scan (the T1 volume is cut in the T2 frame but samples the T1 scan; the axial volume the
axial scan)."""
import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import disc_set_labelled_by_t1, run_cli

from spinecore.extract import disc_volumes, t1_disc_volumes
from spinecore.grade import GENODISC, Grader
from spinecore.grade.fusion import FusionConfig, FusionNet
from spinecore.grade.network import compact
from spinecore.io import load_study
from spinecore.io.write import write_volume
from spinecore.models import save_model
from spinecore.phantom import PhantomSpec, make_phantom
from spinecore.pipeline import analyse
from spinecore.saliency import Method, stream_hotspots
from spinecore.train.grading import GradingTraining, train_grading_model

TASK = GENODISC.task_names.index("marrow_upper")
LEVEL = "L4-L5"
#: the evidence the test model learns: a bright blob in the middle of the T1 disc volume only
BLOB = (slice(3, 6), slice(42, 70), slice(98, 126))
BLOB_RADIUS_MM = 5.0


@pytest.fixture(scope="module")
def fused():
    """A T1 + T2 grader (fc6-sum) trained for a few steps on disc sets whose T1 alone carries the label."""
    data, _ = disc_set_labelled_by_t1(GENODISC.task_names[TASK], LEVEL, BLOB)
    model = train_grading_model(data, GENODISC, GradingTraining(seed=0, steps=30, batch_size=8, streams=("t2", "t1"),
                                                                fusion="fc6-sum"), "test")
    return model, Grader(model.network, GENODISC, model.metadata)


@pytest.fixture(scope="module")
def study():
    """A phantom whose T1 lies on its own grid (rotated, shifted), with a bright blob painted into the
    T1 scan only, around the true centre of L4-L5: ``(t2, t1, blob mask in the T1 grid, spine)``."""
    phantom = make_phantom(PhantomSpec(seed=6, axial=False, t1_rotation_deg=4.0, t1_shift_mm=(2.0, 5.0, -4.0)))
    t2, t1 = phantom.get("sag_t2").to_series("t2"), phantom.get("sag_t1").to_series("t1")
    centre = next(d["center_mm"] for d in phantom.truth["discs"] if d["level"] == LEVEL)
    voxels = np.indices(t1.shape).reshape(3, -1).T
    distance = np.linalg.norm(t1.geometry.vox_to_mm(voxels) - centre, axis=1).reshape(t1.shape)
    blob = distance <= BLOB_RADIUS_MM
    painted = t1.array.copy()
    painted[blob] = 3 * np.percentile(t1.array, 99)
    return t2, dataclasses.replace(t1, array=painted), blob, phantom.reference_spine(), np.asarray(centre)


def _volumes(study):
    t2, t1, _, spine, _ = study
    volumes = disc_volumes(t2, spine)
    return {v.level: v for v in volumes}, t1_disc_volumes(t1, volumes, spine, t2)


def test_t1_hotspots_land_on_the_t1_scans_evidence(fused, study):
    _, grader = fused
    t2, t1, blob, _, centre = study
    t2_volumes, t1_volumes = _volumes(study)
    maps = stream_hotspots(grader.net, {"t2": t2_volumes[LEVEL].array, "t1": t1_volumes[LEVEL].array}, {TASK: 1},
                           Method.GUIDED, augmentations=8)
    assert set(maps) == {"t2", "t1"} and maps["t1"][TASK].shape == maps["t2"][TASK].shape == (9, 112, 224)
    heat = t1_volumes[LEVEL].to_scan_grid(maps["t1"][TASK])  # in the T1 scan's own grid
    hot = np.argwhere(heat > 0.5)
    assert len(hot)
    weights = heat[tuple(hot.T)]
    centroid_mm = t1.geometry.vox_to_mm((hot * weights[:, None]).sum(0) / weights.sum())
    assert np.linalg.norm(centroid_mm - centre) < 2 * BLOB_RADIUS_MM
    footprint = t1_volumes[LEVEL].to_scan_grid(np.ones((9, 112, 224), np.float32)) > 0
    assert heat[blob].mean() > 3 * heat[footprint & ~blob].mean()
    # the T2 does not show the blob: its map is no brighter there than elsewhere in the T2 disc volume
    assert maps["t2"][TASK][BLOB].mean() < 2 * maps["t2"][TASK].mean()
    # the same indices in the T2's grid are elsewhere: the T1 map went through the T1's own geometry
    assert not np.array_equal(t1.geometry.affine, t2.geometry.affine)


def test_a_missing_stream_has_no_hotspots(fused, study):
    _, grader = fused
    t2_volumes, t1_volumes = _volumes(study)
    t2 = t2_volumes[LEVEL].array
    alone = stream_hotspots(grader.net, {"t2": t2}, {TASK: 1}, Method.BACKPROP, augmentations=2)
    assert set(alone) == {"t2"} and alone["t2"][TASK].max() > 0
    zero = stream_hotspots(grader.net, {"t2": t2, "t1": np.zeros_like(t2)}, {TASK: 1}, Method.BACKPROP, augmentations=2)
    assert not zero["t1"][TASK].any() and np.allclose(zero["t2"][TASK], alone["t2"][TASK], atol=1e-5)
    for method in Method:
        both = stream_hotspots(grader.net, {"t2": t2, "t1": t1_volumes[LEVEL].array}, {TASK: 1}, method,
                               augmentations=2)
        assert all(m[TASK].shape == (9, 112, 224) and m[TASK].max() > 0 for m in both.values()), method


def test_grade_writes_hotspots_of_each_stream_over_its_own_scan(fused, study, tmp_path):
    model, _ = fused
    t2, t1, _, _, _ = study
    save_model(tmp_path / "fused.pt", model)
    t2_file = write_volume(tmp_path / "t2.nii.gz", t2.array, t2.geometry)
    t1_file = write_volume(tmp_path / "t1.nii.gz", t1.array, t1.geometry)
    out = tmp_path / "out"
    result = run_cli("grade", t2_file, "--t1", t1_file, "--model", tmp_path / "fused.pt", "--hotspots", "marrow_upper",
                     "--augmentations", 2, "--no-tta", "--out", out)
    assert result.returncode == 0, result.stderr
    streams = {d["level"]: d["streams"] for d in json.loads((out / "gradings.json").read_text())["discs"]}
    assert streams[LEVEL] == ["t2", "t1"]
    scans = {"t2": load_study(t2_file).sagittal(), "t1": load_study(t1_file).sagittal()}
    for level, used in streams.items():
        for stream in used:
            suffix = "" if stream == "t2" else f"_{stream}"
            written = load_study(out / "hotspots" / f"{level}_marrow_upper{suffix}.nii.gz").series[0]
            assert written.shape == scans[stream].shape
            assert np.allclose(written.geometry.affine, scans[stream].geometry.affine, atol=1e-3)
            assert 0 <= written.array.min() and written.array.max() <= 1 and written.array.max() > 0
            assert (out / "hotspots" / f"{level}{suffix}.png").is_file()
    assert not list((out / "hotspots").glob("*_axial*"))


def test_axial_hotspots_lie_in_the_axial_scans(tmp_path):
    """An untrained T2 + T1 + axial grader on a phantom study with axial stacks through the lower discs."""
    phantom = make_phantom(PhantomSpec(seed=3))
    t2, t1 = phantom.get("sag_t2").to_series("t2"), phantom.get("sag_t1").to_series("t1")
    axials = [s.to_series(s.name) for s in phantom.series if s.name.startswith("ax_t2_")]
    torch.manual_seed(0)
    config = FusionConfig(compact([t.n_classes for t in GENODISC.tasks]), ("t2", "t1", "axial"), "fc8-sum")
    net = FusionNet(config).eval()
    result = analyse(t2, grader=Grader(net, GENODISC, {"model_id": "untrained"}), tta=False, t1=t1, axials=axials,
                     hotspot_tasks=("herniation",), augmentations=1)
    assert set(result.hotspots) == {"t2", "t1", "axial"}
    graded = {d.level: d.streams for d in result.gradings.discs}
    for stream in ("t1", "axial"):
        assert set(result.hotspots[stream]) == {level for level, used in graded.items() if stream in used}
    assert 0 < len(result.hotspots["axial"]) < len(graded)
    for level, maps in result.hotspots["axial"].items():
        assert maps["herniation"].shape == (3, 224, 224)
        volume = result.others["axial"][level]
        scan = result.scan_of("axial", volume)
        heat = result.heatmap("herniation", "axial", scan)
        assert heat.shape == scan.shape and heat.max() > 0
        assert np.all(volume.to_scan_grid(maps["herniation"]) <= heat + 1e-6)


def test_excitation_of_a_3d_fused_grader_stops_at_conv1_of_each_sagittal_stream():
    """Two streams run through the one 3-D sagittal tower: each gets its own Conv1 map (thesis
    5.1.3), resized to its volume; the 2-D axial tower's map is at its input; a missing T1 has none."""
    torch.manual_seed(0)
    config = FusionConfig(compact([t.n_classes for t in GENODISC.tasks], dims=3), ("t2", "t1", "axial"), "fc6-concat")
    net = FusionNet(config).eval()
    g = np.random.default_rng(0)
    volumes = {"t2": g.random((9, 112, 224)), "t1": g.random((9, 112, 224)), "axial": g.random((3, 224, 224))}
    maps = stream_hotspots(net, volumes, {0: 1}, Method.EXCITATION, augmentations=1)
    assert {s: m[0].shape for s, m in maps.items()} == {s: v.shape for s, v in volumes.items()}
    # contrastive excitation conserves probability: the sagittal streams' positive parts are not both empty
    assert maps["t2"][0].max() + maps["t1"][0].max() > 0 and maps["axial"][0].max() > 0
    missing = stream_hotspots(net, {**volumes, "t1": np.zeros((9, 112, 224))}, {0: 1}, Method.EXCITATION,
                              augmentations=1)
    assert not missing["t1"][0].any() and missing["axial"][0].shape == (3, 224, 224)
