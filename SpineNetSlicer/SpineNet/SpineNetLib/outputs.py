"""A spinecore analysis as MRML nodes: a segmentation (one segment per vertebral body and disc),
one closed curve per vertebral body, one heatmap volume per hotspot task and stream (over the scan
that stream was read from) and a gradings table.

Every output carries the attribute ``SpineNet.InputVolume`` = the input node's ID, so a re-run
replaces exactly its own outputs and never the user's nodes. No Qt here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from spinecore.levels import level_colour
from spinecore.localise import CORNER_NAMES, Spine, structure_masks
from spinecore.pipeline import Analysis
from spinecore.report.gradings import disc_rows, grading_columns, streams_text
from spinecore.saliency.settings import HEATMAP_SHOWN_FROM
from spinecore.streams import STREAMS

from SpineNetLib.bridge import add_volume_node, ijk_to_ras_of, lps_to_ras, node_geometry, to_node_grid, vtk_matrix

INPUT_ATTRIBUTE = "SpineNet.InputVolume"
ROLE_ATTRIBUTE = "SpineNet.Role"
HEATMAP_COLOURS = "vtkMRMLColorTableNodeIron"
STREAMS_COLUMN = "streams"  # the gradings table's column of each disc's streams


@dataclass
class SpineNetOutputs:
    """The nodes one run added for one input volume."""

    segmentation: object
    curves: list = field(default_factory=list)
    heatmaps: dict = field(default_factory=dict)
    table: object = None

    @property
    def nodes(self) -> list:
        return [self.segmentation, *self.curves, *self.heatmaps.values(), self.table]


def _tag(node, input_node, role: str):
    node.SetAttribute(INPUT_ATTRIBUTE, input_node.GetID())
    node.SetAttribute(ROLE_ATTRIBUTE, role)
    return node


def outputs_of(scene, input_node) -> list:
    """The nodes SpineNet made for ``input_node``."""
    nodes = scene.GetNodes()
    found = [nodes.GetItemAsObject(i) for i in range(nodes.GetNumberOfItems())]
    return [n for n in found if n.GetAttribute(INPUT_ATTRIBUTE) == input_node.GetID()]


def remove_outputs(scene, input_node) -> int:
    """Remove SpineNet's earlier outputs for ``input_node`` (with their display and storage
    nodes); returns how many outputs were removed."""
    outputs = outputs_of(scene, input_node)
    for node in outputs:
        helpers = [node.GetNthStorageNode(i) for i in range(node.GetNumberOfStorageNodes())]
        if node.IsA("vtkMRMLDisplayableNode"):
            helpers += [node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes())]
        scene.RemoveNode(node)
        for helper in helpers:
            if helper is not None and helper.GetScene() is scene:
                scene.RemoveNode(helper)
    return len(outputs)


def _oriented_mask(mask: np.ndarray, ijk_to_ras: np.ndarray):
    """A ``vtkOrientedImageData`` of ``mask`` ``(k, j, i)`` cropped to its bounding box."""
    import slicer
    import vtk
    from vtk.util import numpy_support

    inside = np.argwhere(mask)
    (k0, j0, i0), (k1, j1, i1) = inside.min(0), inside.max(0)
    image = slicer.vtkOrientedImageData()
    image.SetExtent(int(i0), int(i1), int(j0), int(j1), int(k0), int(k1))
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    voxels = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
    voxels[:] = mask[k0:k1 + 1, j0:j1 + 1, i0:i1 + 1].astype(np.uint8).ravel()
    image.SetImageToWorldMatrix(vtk_matrix(ijk_to_ras))
    return image


def add_structure_segmentation(scene, input_node, spine: Spine, series_geometry):
    """One segment per vertebral body (``L4``) and disc (``L4-L5``) in the input's voxel grid,
    coloured by :func:`spinecore.levels.level_colour`."""
    grid = node_geometry(input_node)
    node = _tag(scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{input_node.GetName()} SpineNet structures"),
                input_node, "segmentation")
    node.CreateDefaultDisplayNodes()
    node.SetReferenceImageGeometryParameterFromVolumeNode(input_node)
    for name, mask in structure_masks(spine).items():
        if mask.any():
            image = _oriented_mask(to_node_grid(mask, series_geometry, grid), ijk_to_ras_of(grid))
            node.AddSegmentFromBinaryLabelmapRepresentation(image, name, level_colour(name))
    return node


def add_vertebra_curves(scene, input_node, spine: Spine, all_slices: bool = False) -> list:
    """A linear closed curve through each body's four corners (RAS, control points named after
    :data:`~spinecore.localise.CORNER_NAMES`): on its mid slice, or on every slice as
    ``"L4 slice 5"`` when ``all_slices``."""
    curves = []
    for vertebra in spine.vertebrae:
        outlines = vertebra.slices if all_slices else (vertebra.mid,)
        for outline in outlines:
            name = f"{vertebra.level} slice {outline.slice}" if all_slices else vertebra.level
            curve = _tag(scene.AddNewNodeByClass("vtkMRMLMarkupsClosedCurveNode", name), input_node, "quadrilateral")
            curve.SetCurveTypeToLinear()
            for corner, point in zip(CORNER_NAMES, lps_to_ras(outline.corners_mm)):
                curve.AddControlPoint(point.tolist(), corner)
            curve.SetAttribute("SpineNet.Level", vertebra.level)
            curve.SetAttribute("SpineNet.Slice", str(outline.slice))
            curve.CreateDefaultDisplayNodes()
            curve.GetDisplayNode().SetSelectedColor(level_colour(vertebra.level))
            curve.GetDisplayNode().SetColor(level_colour(vertebra.level))
            curve.GetDisplayNode().SetPointLabelsVisibility(False)
            curves.append(curve)
    return curves


def heatmap_name(task: str, stream: str, scan_number: int, scans: int) -> str:
    """The key of a heatmap in :attr:`SpineNetOutputs.heatmaps` (and its file ``heatmap_<key>.nrrd``):
    ``task`` over the T2, ``<task>_t1`` over the T1, ``<task>_axial`` (``<task>_axial<n>`` for the
    n-th of several axial scans) over an axial scan."""
    return task if stream == "t2" else f"{task}_{stream}{scan_number if scans > 1 else ''}"


def _heatmap_node(scene, input_node, node, heat: np.ndarray, geometry, task: str, stream: str, title: str,
                  method: str):
    """A heatmap volume of ``task`` in ``stream`` over ``node``'s voxel grid, tagged as an output of ``input_node``."""
    grid = node_geometry(node)
    heatmap = _tag(add_volume_node(scene, f"{input_node.GetName()} SpineNet heatmap {title}",
                                   to_node_grid(heat, geometry, grid), grid), input_node, "heatmap")
    heatmap.SetAttribute("SpineNet.Task", task)
    heatmap.SetAttribute("SpineNet.Stream", stream)
    heatmap.SetAttribute("SpineNet.Method", method)
    display = heatmap.GetDisplayNode()
    display.SetAndObserveColorNodeID(HEATMAP_COLOURS)
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(0.0, 1.0)
    display.SetLowerThreshold(HEATMAP_SHOWN_FROM)
    display.SetUpperThreshold(1.0)
    display.ApplyThresholdOn()
    return heatmap


def add_heatmap_volumes(scene, input_node, analysis: Analysis, stream_nodes: dict[str, Sequence] | None = None) -> dict:
    """``{name: volume node}`` (names: :func:`heatmap_name`): per hotspot task and stream, the hotspots of
    every disc composed in the voxel grid of the node that stream was read from (values 0–1), shown with
    the Iron colour table, transparent below :data:`HEATMAP_SHOWN_FROM`. The T2's lie over
    ``input_node``; the other streams' over ``stream_nodes`` (``{"t1": [node], "axial": [node, …]}``,
    in the order of the run's inputs); a stream without nodes there gets none."""
    nodes = {"t2": [input_node], **(stream_nodes or {})}
    heatmaps = {}
    for stream in (s for s in STREAMS if s in analysis.hotspots):
        scans = analysis.scans(stream)
        for number, (scan, node) in enumerate(zip(scans, nodes.get(stream, ())), start=1):
            for task in analysis.hotspot_tasks:
                name = heatmap_name(task, stream, number, len(scans))
                title = task if stream == "t2" else f"{task} {name.removeprefix(task + '_')}"
                heatmaps[name] = _heatmap_node(scene, input_node, node, analysis.heatmap(task, stream, scan),
                                               scan.geometry, task, stream, title, analysis.method.value)
    return heatmaps


def add_gradings_table(scene, input_node, analysis: Analysis):
    """The gradings with the columns of spinecore's ``gradings.csv`` (:func:`grading_columns`):
    level, QC flags, disc measurements, one integer column per task, then ``<task>_confidence``;
    last :data:`STREAMS_COLUMN`, the streams each disc's grades rest on (``t2 + t1``, as
    ``gradings.json`` lists them)."""
    import vtk

    node = _tag(scene.AddNewNodeByClass("vtkMRMLTableNode", f"{input_node.GetName()} SpineNet gradings"),
                input_node, "gradings")
    table = node.GetTable()
    gradings = analysis.gradings
    rows = disc_rows(gradings, analysis.spine)
    arrays = {str: vtk.vtkStringArray, int: vtk.vtkIntArray, float: vtk.vtkDoubleArray}
    for name, kind in grading_columns(gradings.scheme):
        column = arrays[kind]()
        column.SetName(name)
        for row in rows:
            column.InsertNextValue(float("nan") if row[name] is None else row[name])  # not measured
        table.AddColumn(column)
    streams = vtk.vtkStringArray()
    streams.SetName(STREAMS_COLUMN)
    for disc in gradings.discs:
        streams.InsertNextValue(streams_text(disc.streams))
    table.AddColumn(streams)
    node.SetUseColumnTitleAsColumnHeader(True)
    node.SetAttribute("SpineNet.Model", gradings.model_id)
    node.SetAttribute("SpineNet.Scheme", gradings.scheme.name)
    node.SetAttribute("SpineNet.TTA", str(gradings.tta))
    return node


def show_analysis(scene, input_node, analysis: Analysis, all_slices: bool = False,
                  stream_nodes: dict[str, Sequence] | None = None) -> SpineNetOutputs:
    """Replace ``input_node``'s earlier SpineNet outputs by the nodes of ``analysis`` (heatmaps of the
    other streams over their ``stream_nodes``, :func:`add_heatmap_volumes`)."""
    remove_outputs(scene, input_node)
    return SpineNetOutputs(
        segmentation=add_structure_segmentation(scene, input_node, analysis.spine, analysis.series.geometry),
        curves=add_vertebra_curves(scene, input_node, analysis.spine, all_slices),
        heatmaps=add_heatmap_volumes(scene, input_node, analysis, stream_nodes),
        table=add_gradings_table(scene, input_node, analysis),
    )
