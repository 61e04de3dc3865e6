"""SpineNetLib's logic on real MRML nodes (slicer-core, no Qt, no Slicer application): the bundled
sample as Slicer loads it, and a phantom DICOM study read by spinecore, installed from its wheel
(test_packaging.py runs this file in a fresh venv)."""
from __future__ import annotations

import csv
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import slicer
import vtk
from vtk.util import numpy_support

import spinecore
from conftest import REPO, SAMPLE_T2, needs_installed_engine
from spinecore.geometry import Geometry
from spinecore.io import load_study
from spinecore.io.volume import read_volume
from spinecore.levels import level_colour
from spinecore.localise import CORNER_NAMES
from spinecore.localise.spine import INFERRED_VERTEBRA, PARTIAL_VIEW
from spinecore.phantom.render import LABELS
from spinecore.report import write_gradings_csv
from SpineNetLib.bridge import RAS_FROM_LPS, add_volume_node, lps_to_ras, node_geometry, numpy_matrix
from SpineNetLib.headless import new_scene, release
from SpineNetLib.logic import SpineNetRunner
from SpineNetLib.outputs import INPUT_ATTRIBUTE, STREAMS_COLUMN, outputs_of
from SpineNetLib.parameters import SpineNetParameters
from SpineNetLib.saving import save_outputs

pytestmark = needs_installed_engine
HOTSPOTS = SpineNetParameters(hotspot_tasks=("pfirrmann", "modic"), augmentations=4)


def test_the_engine_is_the_installed_wheel_not_the_checkout():
    engine = Path(spinecore.__file__).parent
    assert engine == Path(sysconfig.get_paths()["purelib"]) / "spinecore" and not engine.is_relative_to(REPO)
    assert (engine / "bundled_models" / "grader.pt").is_file()


@pytest.fixture(scope="module")
def runner() -> SpineNetRunner:
    return SpineNetRunner()


@pytest.fixture
def scene():
    scene = new_scene()
    yield scene
    release(scene)


def load_like_slicer(scene, path):
    """A volume node as Slicer's loader makes it: the file's own voxel order and ITK geometry."""
    image = sitk.ReadImage(str(path))
    return add_volume_node(scene, "T2", sitk.GetArrayFromImage(image).astype(np.float32), Geometry.from_sitk(image))


def ras_to_index(volume_node, points_ras: np.ndarray) -> np.ndarray:
    """RAS points ``(n, 3)`` → nearest voxel ``(k, j, i)`` of the node's own grid."""
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetRASToIJKMatrix(matrix)
    ijk = (numpy_matrix(matrix) @ np.c_[points_ras, np.ones(len(points_ras))].T)[:3].T
    return np.rint(ijk[:, ::-1]).astype(int)


def segment_mask(segmentation_node, segment_name: str, shape_kji) -> np.ndarray:
    """A segment's binary labelmap in the reference (input) grid, as ``(k, j, i)`` bool."""
    segment_id = segmentation_node.GetSegmentation().GetSegmentIdBySegmentName(segment_name)
    image = slicer.vtkOrientedImageData()
    segmentation_node.GetBinaryLabelmapRepresentation(segment_id, image)
    i0, i1, j0, j1, k0, k1 = image.GetExtent()
    values = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(k1 - k0 + 1, j1 - j0 + 1, i1 - i0 + 1)
    mask = np.zeros(shape_kji, bool)
    mask[k0:k1 + 1, j0:j1 + 1, i0:i1 + 1] = values > 0
    return mask


def test_sample_end_to_end_on_mrml_nodes(scene, runner, tmp_path):
    image = sitk.ReadImage(str(SAMPLE_T2))
    # voxels stored in another order than spinecore's canonical one: outputs must follow the node's grid
    array, geometry = Geometry.from_sitk(image).reorient(sitk.GetArrayFromImage(image).astype(np.float32), ("A", "L", "S"))
    node = add_volume_node(scene, "T2", array, geometry)
    analysis, outputs = runner.run(node, HOTSPOTS)
    spine, shape = analysis.spine, array.shape
    assert node_geometry(node).axis_codes == ("A", "L", "S") != analysis.series.geometry.axis_codes

    # segmentation: one segment per body and disc, named and coloured by level, on the right voxels
    segmentation = outputs.segmentation.GetSegmentation()
    names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
    discs = [d.level for d in spine.discs]
    assert sorted(names) == sorted(spine.levels + discs) and len(spine.levels) >= 6
    for name in names:
        segment = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName(name))
        assert np.allclose(segment.GetColor(), level_colour(name), atol=1e-3)

    # curves: the mid-slice quadrilateral of each body in RAS, inside its own segment
    assert [c.GetName() for c in outputs.curves] == spine.levels
    for curve, vertebra in zip(outputs.curves, spine.vertebrae):
        assert curve.GetNumberOfControlPoints() == 4
        assert [curve.GetNthControlPointLabel(i) for i in range(4)] == list(CORNER_NAMES)
        points = slicer.util.arrayFromMarkupsControlPoints(curve)
        assert np.allclose(points, lps_to_ras(vertebra.mid.corners_mm), atol=1e-6)
        k, j, i = ras_to_index(node, points.mean(0, keepdims=True))[0]
        if PARTIAL_VIEW not in vertebra.flags:  # a body cut by the view may have its centre outside it
            assert segment_mask(outputs.segmentation, vertebra.level, shape)[k, j, i]

    # heatmaps: the input's grid exactly, and every voxel where the analysis put it in LPS
    assert sorted(outputs.heatmaps) == ["modic", "pfirrmann"]
    for task, heat_node in outputs.heatmaps.items():
        assert heat_node.GetImageData().GetDimensions() == node.GetImageData().GetDimensions()
        assert np.allclose(numpy_matrix(_ijk_to_ras(heat_node)), numpy_matrix(_ijk_to_ras(node)))
        heat = slicer.util.arrayFromVolume(heat_node)
        assert 0 <= heat.min() and heat.max() == pytest.approx(1.0, abs=1e-6)
        hot = np.argwhere(heat > 0.5)[:: 97]
        lps = (RAS_FROM_LPS @ numpy_matrix(_ijk_to_ras(node)) @ np.c_[hot[:, ::-1], np.ones(len(hot))].T)[:3].T
        in_series = np.rint(analysis.series.geometry.mm_to_vox(lps)).astype(int)
        expected = analysis.heatmap(task)[tuple(in_series.T)]
        assert np.allclose(heat[tuple(hot.T)], expected)

    # table: the columns and values of spinecore's gradings.csv, then the streams (the T2 alone here)
    with write_gradings_csv(analysis.gradings, analysis.spine, tmp_path / "gradings.csv").open() as f:
        reader = csv.reader(f)
        header, rows = next(reader), list(reader)
    table = outputs.table
    assert [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())] == header + [STREAMS_COLUMN]
    assert [table.GetCellText(r, len(header)) for r in range(table.GetNumberOfRows())] == ["t2"] * len(rows)
    assert header[:3] == ["level", "flags", "anterior_height_mm"]
    assert table.GetNumberOfRows() == len(rows) == len(discs)
    for r, row in enumerate(rows):
        assert [table.GetCellText(r, c) for c in (0, 1)] == row[:2]
        expected = [float(v) if v else np.nan for v in row[2:]]  # empty: not measured
        assert [float(table.GetCellText(r, c)) for c in range(2, len(header))] == pytest.approx(expected, nan_ok=True)


def _ijk_to_ras(node):
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return matrix


def test_rerun_replaces_its_own_outputs_and_keeps_the_users(scene, runner):
    node = load_like_slicer(scene, SAMPLE_T2)
    _, first = runner.run(node, SpineNetParameters(tta=False))
    mine = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "my segmentation")
    my_curve = scene.AddNewNodeByClass("vtkMRMLMarkupsClosedCurveNode", "L4")  # same name as an output
    count = scene.GetNumberOfNodes()
    _, second = runner.run(node, SpineNetParameters(tta=False))
    assert scene.GetNumberOfNodes() == count
    assert all(scene.GetNodeByID(n.GetID()) is None for n in first.nodes if n not in second.nodes)
    assert scene.GetNodeByID(mine.GetID()) is mine and scene.GetNodeByID(my_curve.GetID()) is my_curve
    assert {n.GetID() for n in outputs_of(scene, node)} == {n.GetID() for n in second.nodes}
    assert all(n.GetAttribute(INPUT_ATTRIBUTE) == node.GetID() for n in second.nodes)
    assert not second.heatmaps


def test_phantom_dicom_study_quadrilaterals_lie_on_the_true_vertebrae(scene, runner, phantom_dir):
    series = load_study(phantom_dir / "dicom").sagittal()
    node = add_volume_node(scene, series.description, series.array, series.geometry)
    analysis, outputs = runner.run(node, SpineNetParameters(tta=False, all_slices=True))
    truth = read_volume(phantom_dir / "nifti" / "sag_labels.nii.gz")
    assert np.allclose(truth.geometry.affine, node_geometry(node).affine)
    labels = truth.array.astype(int)
    assert len(outputs.curves) == sum(len(v.slices) for v in analysis.spine.vertebrae)
    # the body beyond the disc the top of the view cuts through is inferred, mostly out of view
    inferred = {v.level for v in analysis.spine.vertebrae if INFERRED_VERTEBRA in v.flags}
    assert all(PARTIAL_VIEW in analysis.spine.vertebra(level).flags for level in inferred)
    on_own_body = []
    for curve in outputs.curves:
        if curve.GetAttribute("SpineNet.Level") in inferred:
            continue
        points = slicer.util.arrayFromMarkupsControlPoints(curve)
        k, j, i = ras_to_index(node, points.mean(0, keepdims=True))[0]
        on_own_body.append(labels[k, j, i] == LABELS[curve.GetAttribute("SpineNet.Level")])
    assert np.mean(on_own_body) >= 0.95
    # segments against the true label map (measured Dice: bodies 0.87-0.96, discs 0.81-0.92)
    for level in analysis.spine.levels + [d.level for d in analysis.spine.discs if INFERRED_VERTEBRA not in d.flags]:
        if level in inferred:
            continue
        found = segment_mask(outputs.segmentation, level, labels.shape)
        true = labels == LABELS[level]
        assert 2 * (found & true).sum() / (found.sum() + true.sum()) > 0.75, level


def test_saved_files_and_scene_read_back(scene, runner, tmp_path):
    node = load_like_slicer(scene, SAMPLE_T2)
    analysis, outputs = runner.run(node, HOTSPOTS)
    written = save_outputs(scene, outputs, analysis, tmp_path)
    assert all(p.is_file() for p in written)

    again = new_scene()
    try:
        segmentation = again.AddNewNodeByClass("vtkMRMLSegmentationNode")
        storage = again.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
        storage.SetFileName(str(tmp_path / "structures.seg.nrrd"))
        assert storage.ReadData(segmentation)
        read_names = {segmentation.GetSegmentation().GetNthSegment(i).GetName()
                      for i in range(segmentation.GetSegmentation().GetNumberOfSegments())}
        assert read_names == set(analysis.spine.levels) | {d.level for d in analysis.spine.discs}

        for curve in outputs.curves:
            read = again.AddNewNodeByClass("vtkMRMLMarkupsClosedCurveNode")
            storage = again.AddNewNodeByClass("vtkMRMLMarkupsJsonStorageNode")
            storage.SetFileName(str(tmp_path / "quadrilaterals" / f"{curve.GetName()}.mrk.json"))
            assert storage.ReadData(read)
            assert np.allclose(slicer.util.arrayFromMarkupsControlPoints(read),
                               slicer.util.arrayFromMarkupsControlPoints(curve), atol=1e-3)

        heat = sitk.ReadImage(str(tmp_path / "heatmap_pfirrmann.nrrd"))
        assert np.allclose(Geometry.from_sitk(heat).affine, node_geometry(node).affine, atol=1e-4)
        with (tmp_path / "gradings.csv").open() as f:
            table = list(csv.DictReader(f))
        assert [r["level"] for r in table] == [d.level for d in analysis.gradings.discs]
        assert [int(r["pfirrmann"]) for r in table] == [r["pfirrmann"] for r in analysis.gradings.rows()]

    finally:
        release(again)

    reopened = new_scene()
    try:
        assert reopened.ReadFromMRB(str(tmp_path / "scene.mrb"))
        counts = {cls: reopened.GetNumberOfNodesByClass(cls) for cls in
                  ("vtkMRMLScalarVolumeNode", "vtkMRMLSegmentationNode", "vtkMRMLMarkupsClosedCurveNode", "vtkMRMLTableNode")}
        assert counts == {"vtkMRMLScalarVolumeNode": 3, "vtkMRMLSegmentationNode": 1,
                          "vtkMRMLMarkupsClosedCurveNode": len(outputs.curves), "vtkMRMLTableNode": 1}
        heat = reopened.GetFirstNodeByName(outputs.heatmaps["modic"].GetName())
        assert np.array_equal(slicer.util.arrayFromVolume(heat), slicer.util.arrayFromVolume(outputs.heatmaps["modic"]))
        segmentation = reopened.GetFirstNodeByClass("vtkMRMLSegmentationNode").GetSegmentation()
        assert segmentation.GetNumberOfSegments() == outputs.segmentation.GetSegmentation().GetNumberOfSegments()
        table = reopened.GetFirstNodeByClass("vtkMRMLTableNode")
        assert table.GetNumberOfRows() == len(analysis.gradings.discs)
        assert table.GetAttribute("SpineNet.InputVolume") == node.GetID()
    finally:
        release(reopened)
