"""One study's SpineNet results as files Slicer opens: ``structures.seg.nrrd``,
``quadrilaterals/<name>.mrk.json``, ``heatmap_<task>.nrrd``, ``gradings.csv`` and the whole scene
as ``scene.mrb``; beside them spinecore's own ``gradings.json``, ``vertebrae.json`` and
``overview.png``. No Qt here."""
from __future__ import annotations

from pathlib import Path

from spinecore.pipeline import Analysis
from spinecore.report import write_grading_overview, write_gradings_json, write_vertebrae_json

from SpineNetLib.outputs import SpineNetOutputs


def _write(scene, node, storage_class: str, path: Path) -> Path:
    storage = node.GetStorageNode()
    if storage is None or storage.GetClassName() != storage_class:
        storage = scene.AddNewNodeByClass(storage_class)
        node.SetAndObserveStorageNodeID(storage.GetID())
    storage.SetFileName(str(path))
    if not storage.WriteData(node):
        raise OSError(f"{path}: Slicer could not write {node.GetName()}")
    return path


def save_outputs(scene, outputs: SpineNetOutputs, analysis: Analysis, folder: Path) -> list[Path]:
    """Write every output of one study into ``folder`` (which must exist); returns the paths."""
    folder = Path(folder)
    (folder / "quadrilaterals").mkdir(exist_ok=True)
    written = [_write(scene, outputs.segmentation, "vtkMRMLSegmentationStorageNode", folder / "structures.seg.nrrd")]
    written += [_write(scene, curve, "vtkMRMLMarkupsJsonStorageNode",
                       folder / "quadrilaterals" / f"{curve.GetName().replace(' ', '_')}.mrk.json")
                for curve in outputs.curves]
    written += [_write(scene, node, "vtkMRMLVolumeArchetypeStorageNode", folder / f"heatmap_{task}.nrrd")
                for task, node in outputs.heatmaps.items()]
    written.append(_write(scene, outputs.table, "vtkMRMLTableStorageNode", folder / "gradings.csv"))
    written.append(write_gradings_json(analysis.gradings, analysis.spine, folder / "gradings.json"))
    written.append(write_vertebrae_json(analysis.spine, folder / "vertebrae.json"))
    written.append(write_grading_overview(analysis.series, analysis.spine, analysis.gradings, folder / "overview.png"))
    scene_file = folder / "scene.mrb"
    if not scene.WriteToMRB(str(scene_file.resolve())):
        raise OSError(f"{scene_file}: Slicer could not write the scene bundle")
    written.append(scene_file)
    return written
