"""An MRML scene outside the Slicer application (``pip install slicer-core``), set up like
Slicer's own: application logic, default colour tables, the module logics that register the
segmentation, markups, table and volume node classes, and the data I/O needed to read ``.mrb``.
Inside Slicer use ``slicer.mrmlScene`` instead."""
from __future__ import annotations

import tempfile

_alive: list = []  # the logics and cache folders must live as long as their scene


def new_scene():
    import slicer

    scene = slicer.vtkMRMLScene()
    for singleton in (slicer.vtkMRMLSelectionNode(), slicer.vtkMRMLInteractionNode()):
        singleton.SetSingletonTag("Singleton")
        scene.AddNode(singleton)
    app = slicer.vtkSlicerApplicationLogic()
    app.SetMRMLScene(scene)
    app.GetColorLogic().SetMRMLScene(scene)
    app.GetColorLogic().AddDefaultColorNodes()
    cache = tempfile.TemporaryDirectory(prefix="spinenet-mrml-cache-")
    remote_io = slicer.vtkMRMLRemoteIOLogic()
    remote_io.SetMRMLScene(scene)
    remote_io.SetMRMLApplicationLogic(app)
    remote_io.GetCacheManager().SetRemoteCacheDirectory(cache.name)
    data_io = slicer.vtkDataIOManagerLogic()
    data_io.SetMRMLScene(scene)
    data_io.SetMRMLApplicationLogic(app)
    data_io.SetAndObserveDataIOManager(remote_io.GetDataIOManager())
    remote_io.AddDataIOToScene()
    keep = [app, remote_io, data_io, cache]
    for name, logic_class in (("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic),
                              ("Markups", slicer.vtkSlicerMarkupsLogic), ("Tables", slicer.vtkSlicerTablesLogic),
                              ("Volumes", slicer.vtkSlicerVolumesLogic)):
        logic = logic_class()
        logic.SetMRMLScene(scene)
        logic.SetMRMLApplicationLogic(app)
        app.SetModuleLogic(name, logic)
        keep.append(logic)
    _alive.append((scene, keep))
    return scene


def release(scene) -> None:
    """Forget a scene made by :func:`new_scene` (its logics and cache folder go with it)."""
    _alive[:] = [(s, keep) for s, keep in _alive if s is not scene]
    scene.Clear(1)
