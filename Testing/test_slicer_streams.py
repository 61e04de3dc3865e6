"""SpineNetSlicer with the other streams (thesis ch. 6) on real MRML nodes (slicer-core, no Qt): a
phantom's sagittal T2, its sagittal T1 on another grid and pose and its axial stacks as volume nodes,
graded through the logic by a tiny T1 + T2 + axial model trained here; and the batch script taking
a DICOM study's T1 and axial series. Runs with whichever spinecore this interpreter imports."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import slicer
import vtk

from conftest import BATCH_SCRIPT
from spinecore.data.manifests import build_disc_set, read_manifest, write_phantom_manifest
from spinecore.errors import SeriesNotFoundError, StreamError
from spinecore.extract import t1_disc_volumes
from spinecore.grade import GENODISC
from spinecore.io import companion_series, load_study
from spinecore.localise.spine import PARTIAL_VIEW
from spinecore.models import default_model_path, save_model
from spinecore.phantom import PhantomSpec, make_phantom
from spinecore.train.grading import GradingTraining, train_grading_model
from SpineNetLib.bridge import add_volume_node
from SpineNetLib.headless import new_scene, release
from SpineNetLib.logic import SpineNetRunner
from SpineNetLib.outputs import STREAMS_COLUMN, outputs_of
from SpineNetLib.parameters import SpineNetParameters

STREAMS = ("t2", "t1", "axial")
ELSEWHERE_MM = 300.0  # a T1 moved this far lies off every disc of the T2


@pytest.fixture(scope="module")
def fused_model(tmp_path_factory):
    """A T1 + T2 + axial grader (FC6 sum) after a few steps on one small phantom: only its streams matter here."""
    folder = tmp_path_factory.mktemp("fused")
    manifest = write_phantom_manifest(folder, (31,), GENODISC, n_slices=3, streams=STREAMS)
    data, _ = build_disc_set(read_manifest(manifest, GENODISC))
    settings = GradingTraining(seed=0, steps=2, batch_size=2, streams=STREAMS, fusion="fc6-sum")
    path = folder / "t2-t1-axial.pt"
    save_model(path, train_grading_model(data, GENODISC, settings, "test_slicer_streams"))
    return path


@pytest.fixture(scope="module")
def phantom():
    """A phantom whose T1 has its own grid and pose (tilted, shifted, other spacing), with axial stacks."""
    return make_phantom(PhantomSpec(seed=6, n_slices=5, t1_rotation_deg=4.0, t1_shift_mm=(2.0, 5.0, -4.0),
                                    t1_spacing_mm=(4.5, 0.8, 0.8)))


@pytest.fixture(scope="module")
def runner() -> SpineNetRunner:
    return SpineNetRunner()


@pytest.fixture
def scene():
    scene = new_scene()
    yield scene
    release(scene)


def nodes_of(scene, phantom) -> dict:
    """The phantom's series as volume nodes, by series name (``sag_t2``, ``sag_t1``, ``ax_t2_l4-l5``, …)."""
    return {s.name: add_volume_node(scene, s.name, s.array, s.geometry) for s in phantom.series}


def axial_levels(phantom) -> set[str]:
    return {s.name.removeprefix("ax_t2_").upper() for s in phantom.series if s.name.startswith("ax_t2_")}


def table_streams(table) -> list[str]:
    column = next(c for c in range(table.GetNumberOfColumns()) if table.GetColumnName(c) == STREAMS_COLUMN)
    return [table.GetCellText(r, column) for r in range(table.GetNumberOfRows())]


def test_a_t1_node_on_its_own_grid_adds_the_t1_stream(scene, phantom, fused_model, runner):
    nodes = nodes_of(scene, phantom)
    settings = SpineNetParameters(grader_model=str(fused_model), tta=False)
    analysis, outputs = runner.run(nodes["sag_t2"], settings, t1_node=nodes["sag_t1"])
    # the T1's own field of view may leave out the disc the top of the T2's view cuts through
    partial = {d.level for d in analysis.spine.discs if PARTIAL_VIEW in d.flags}
    levels = [d.level for d in analysis.gradings.discs if d.level not in partial]
    assert len(levels) >= 5
    assert [d.streams for d in analysis.gradings.discs if d.level in levels] == [("t2", "t1")] * len(levels)
    assert [s for d, s in zip(analysis.gradings.discs, table_streams(outputs.table)) if d.level in levels] == \
        ["t2 + t1"] * len(levels)
    t2_only = "; ".join(f"{d.level}: t2" for d in analysis.gradings.discs if d.level not in levels)
    assert runner.summary(analysis) == (f"graded {', '.join(d.level for d in analysis.gradings.discs)}; streams: t2 + t1"
                                        + (f" ({t2_only})" if t2_only else ""))
    # the node's IJK-to-RAS carried the T1's own pose: its disc volumes are the ones cut from the phantom's T1
    t1 = t1_disc_volumes(phantom.get("sag_t1").to_series("T1"), list(analysis.volumes), analysis.spine, analysis.series)
    assert set(levels) <= set(analysis.others["t1"])
    for level, volume in analysis.others["t1"].items():
        assert np.allclose(volume.array, t1[level].array, atol=1e-4), level

    alone, outputs = runner.run(nodes["sag_t2"], settings)  # the T1 taken away: the T2 alone, other grades
    assert [d.streams for d in alone.gradings.discs] == [("t2",)] * len(analysis.gradings.discs)
    assert table_streams(outputs.table) == ["t2"] * len(analysis.gradings.discs)
    assert any(not np.allclose(a.probabilities[t], b.probabilities[t]) for a, b in zip(analysis.gradings.discs,
                                                                                      alone.gradings.discs)
               for t in GENODISC.task_names)


def test_axial_nodes_add_the_axial_stream_where_they_hold_the_disc(scene, phantom, fused_model, runner):
    nodes = nodes_of(scene, phantom)
    axials = [node for name, node in nodes.items() if name.startswith("ax_t2_")]
    settings = SpineNetParameters(grader_model=str(fused_model), tta=False)
    analysis, outputs = runner.run(nodes["sag_t2"], settings, t1_node=nodes["sag_t1"], axial_nodes=axials)
    with_t1 = set(analysis.others["t1"])
    expected = [STREAMS if d.level in axial_levels(phantom) else STREAMS[:2] if d.level in with_t1 else STREAMS[:1]
                for d in analysis.gradings.discs]
    assert {d.level for d in analysis.gradings.discs} - with_t1 <= {d.level for d in analysis.spine.discs
                                                                    if PARTIAL_VIEW in d.flags}
    assert axial_levels(phantom) <= {d.level for d in analysis.gradings.discs}
    assert [d.streams for d in analysis.gradings.discs] == expected
    assert table_streams(outputs.table) == [" + ".join(s) for s in expected]


def test_heatmaps_come_per_stream_over_the_node_each_stream_was_read_from(scene, phantom, fused_model, runner):
    nodes = nodes_of(scene, phantom)
    axials = [node for name, node in nodes.items() if name.startswith("ax_t2_")]
    settings = SpineNetParameters(grader_model=str(fused_model), tta=False, hotspot_tasks=("pfirrmann",),
                                  augmentations=1)
    analysis, outputs = runner.run(nodes["sag_t2"], settings, t1_node=nodes["sag_t1"], axial_nodes=axials)
    over = {"pfirrmann": (nodes["sag_t2"], "t2", analysis.series), "pfirrmann_t1": (nodes["sag_t1"], "t1", analysis.t1)}
    over |= {f"pfirrmann_axial{n}": (node, "axial", scan)
             for n, (node, scan) in enumerate(zip(axials, analysis.scans("axial")), start=1)}
    assert list(outputs.heatmaps) == list(over)  # the T2's first: the one the module shows over the input
    for name, (source, stream, scan) in over.items():
        heat_node = outputs.heatmaps[name]
        assert heat_node.GetAttribute("SpineNet.Stream") == stream and heat_node.GetAttribute("SpineNet.Task") == "pfirrmann"
        assert heat_node.GetImageData().GetDimensions() == source.GetImageData().GetDimensions(), name
        source_ijk, heat_ijk = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
        source.GetIJKToRASMatrix(source_ijk)
        heat_node.GetIJKToRASMatrix(heat_ijk)
        assert all(abs(source_ijk.GetElement(r, c) - heat_ijk.GetElement(r, c)) < 1e-6 for r in range(4) for c in range(4))
        heat = slicer.util.arrayFromVolume(heat_node)
        assert np.allclose(heat, analysis.heatmap("pfirrmann", stream, scan), atol=1e-6) and heat.max() > 0, name
    # a re-run replaces them all, the other streams' too
    _, again = runner.run(nodes["sag_t2"], settings, t1_node=nodes["sag_t1"], axial_nodes=axials)
    assert sorted(n.GetID() for n in outputs_of(scene, nodes["sag_t2"])) == sorted(n.GetID() for n in again.nodes)


def test_a_t2_model_grades_the_t2_and_says_the_others_were_not_used(scene, phantom, runner):
    nodes = nodes_of(scene, phantom)
    settings = SpineNetParameters(grader_model=str(default_model_path("grader")), tta=False)  # the bundled T2 grader
    analysis, outputs = runner.run(nodes["sag_t2"], settings, t1_node=nodes["sag_t1"],
                                   axial_nodes=[nodes["ax_t2_l4-l5"]])
    assert analysis.unused_streams == ("t1", "axial") and not analysis.others
    assert set(table_streams(outputs.table)) == {"t2"}
    assert runner.summary(analysis).endswith("; streams: t2 (the model reads t2: t1 and axial not used)")


def test_a_t1_node_of_another_geometry_is_a_one_line_error_and_adds_nothing(scene, phantom, fused_model, runner):
    nodes = nodes_of(scene, phantom)
    moved = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "elsewhere")
    shift = vtk.vtkMatrix4x4()
    shift.SetElement(1, 3, ELSEWHERE_MM)
    moved.SetMatrixTransformToParent(shift)
    nodes["sag_t1"].SetAndObserveTransformNodeID(moved.GetID())  # the world geometry counts, not the voxel grid
    before = scene.GetNumberOfNodes()
    with pytest.raises(StreamError) as error:
        runner.run(nodes["sag_t2"], SpineNetParameters(grader_model=str(fused_model), tta=False),
                   t1_node=nodes["sag_t1"])
    message = str(error.value)
    assert message.startswith("sag_t1: ") and "does not overlap" in message and "\n" not in message
    assert scene.GetNumberOfNodes() == before and outputs_of(scene, nodes["sag_t2"]) == []


def run_batch(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BATCH_SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def test_batch_grades_a_dicom_study_with_its_t1_and_axial_series(phantom_dir, phantom_truth, fused_model, tmp_path):
    out = tmp_path / "results"
    result = run_batch("--input", phantom_dir / "dicom", "--output", out, "--model", fused_model, "--hotspots",
                       "pfirrmann", "--augmentations", "1", "--no-tta")
    assert result.returncode == 0, result.stderr
    assert "; streams: t2 + t1 + axial (" in result.stdout and "not used" not in result.stdout
    document = json.loads((out / "dicom" / "gradings.json").read_text())
    axial = {n.removeprefix("ax_t2_").upper() for n in phantom_truth["series"] if n.startswith("ax_t2_")}
    assert document["discs"] and axial
    for disc in document["discs"]:
        assert disc["streams"] == (list(STREAMS) if disc["level"] in axial else ["t2", "t1"]), disc["level"]
    scene = new_scene()
    try:  # the scene holds the series the grades rest on (sagittal T2 and T1, the axial stacks) and a heatmap over each
        assert scene.ReadFromMRB(str(out / "dicom" / "scene.mrb"))
        volumes = {scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode").GetName()
                   for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode"))}
        heatmaps = ["pfirrmann", "pfirrmann_t1", *(f"pfirrmann_axial{n}" for n in range(1, len(axial) + 1))]
        assert len(volumes) == 2 + len(axial) + len(heatmaps)
        assert all((out / "dicom" / f"heatmap_{name}.nrrd").is_file() for name in heatmaps)
        table = scene.GetFirstNodeByClass("vtkMRMLTableNode")
        assert table_streams(table) == [" + ".join(d["streams"]) for d in document["discs"]]
    finally:
        release(scene)


def test_explicit_t1_and_axial_files_are_read_as_the_cli_reads_them(phantom_dir):
    """The batch script's ``--t1`` / ``--axial`` are read by ``companion_series``, as ``spinecore grade``'s are."""
    nifti = phantom_dir / "nifti"
    study = load_study(nifti / "sag_t2.nii.gz")
    t1, axials = companion_series(study, study.sagittal(), nifti / "sag_t1.nii.gz", nifti / "ax_t2_l4-l5.nii.gz")
    assert t1.source == str(nifti / "sag_t1.nii.gz")
    assert [a.source for a in axials] == [str(nifti / "ax_t2_l4-l5.nii.gz")]
    assert companion_series(study, study.sagittal()) == (None, [])  # a lone T2 file has no other series
    with pytest.raises(SeriesNotFoundError, match="no axial series"):
        companion_series(study, study.sagittal(), axial=nifti / "sag_t1.nii.gz")


def test_batch_takes_explicit_t1_and_axial_for_one_study_only(phantom_dir, tmp_path):
    nifti = phantom_dir / "nifti"
    result = run_batch("--input", nifti, "--t1", nifti / "sag_t1.nii.gz", "--output", tmp_path / "many")
    assert result.returncode == 2 and "--t1 and --axial go with a single study" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr and not (tmp_path / "many").exists()
