"""The module widget with its logic replaced (as SlicerNNUnet tests its widget), on a real MRML scene
(slicer-core) and the real settings, job thread and scene events: a new parameter node gets the
engine's defaults and the first volume, a stored one keeps its settings, Apply asks for the engine
before anything runs, a job runs with the node's settings, and closing the scene cancels the job and
binds the new scene's node.

Not testable without the Slicer application, so not tested here: the binding itself (``connectGui`` of
Slicer's ``parameterNodeWrapper``, which needs Qt, as do the widgets), the wrapper's serialisation into
the scene, the grader's task list (Qt list items), the dialogs and wait cursor (``tryWithErrorDisplay``
with ``waitCursor``, around starting a job in Apply) and the slice-view layers of a finished job."""
from __future__ import annotations

import importlib.util
import sys
import threading
import types
import typing
import xml.etree.ElementTree as ET
from dataclasses import fields

import pytest
import slicer

from conftest import SLICER_MODULE
from slicer_stand_ins import ParameterNodeStandIn, stand_in_modules
from spinecore.errors import StreamError
from spinecore.pipeline import Cancelled
from spinecore.saliency.settings import Method
from SpineNetLib.headless import new_scene, release
from SpineNetLib.parameters import SpineNetParameters

CHOSEN = SpineNetParameters(grader_model="/models/grader.pt", localiser_model="/models/localiser.pt", tta=False,
                            hotspot_tasks=("modic", "herniation"), method="excitation", augmentations=20,
                            all_slices=True)


@pytest.fixture
def scene(monkeypatch):
    scene = new_scene()
    monkeypatch.setattr(slicer, "mrmlScene", scene, raising=False)  # the application's scene, inside Slicer
    yield scene
    release(scene)


@pytest.fixture
def SpineNet(monkeypatch, scene):
    """``SpineNet.py`` loaded with the stand-ins for what slicer-core lacks (slicer_stand_ins)."""
    for name, module in stand_in_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("SpineNet", SLICER_MODULE / "SpineNet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ComboBox:
    def __init__(self):
        self.items, self.currentText = [], ""

    @property
    def count(self) -> int:
        return len(self.items)

    def addItems(self, items):
        self.items += items
        self.currentText = self.currentText or items[0]


def widgets() -> types.SimpleNamespace:
    """The widgets of SpineNet.ui that the Qt-free parts of the widget touch, as plain values."""
    ui = {name: types.SimpleNamespace(enabled=False) for name in ("modelsCollapsibleButton", "optionsCollapsibleButton",
                                                                   "applyButton", "cancelButton")}
    ui |= {name: types.SimpleNamespace(text="") for name in ("schemeLabel", "statusLabel")}
    ui |= {name: types.SimpleNamespace(currentPath="") for name in ("graderPathLineEdit", "localiserPathLineEdit")}
    return types.SimpleNamespace(**ui, methodComboBox=ComboBox(), hotspotTasksList=types.SimpleNamespace(count=0),
                                 progressBar=types.SimpleNamespace(value=0))


def node_ids(*nodes) -> tuple:
    return tuple(None if node is None else node.GetID() for node in nodes)


class Runner:
    """Records what the widget asks for; ``analyse`` reports progress until it is cancelled, or
    raises ``error`` when one is given."""

    def __init__(self, error: Exception | None = None):
        self.calls, self.started, self.error = [], threading.Event(), error

    def inputs(self, volume_node, t1_node, axial_nodes):
        self.calls.append(("inputs", node_ids(volume_node, t1_node, *axial_nodes)))
        return f"series of {volume_node.GetID()}"

    def analyse(self, inputs, settings, progress):
        self.calls.append(("analyse", inputs, settings))
        self.started.set()
        if self.error is not None:
            raise self.error
        while True:
            progress(0.5, "grading")  # raises Cancelled once the job is cancelled
            threading.Event().wait(0.01)


class Logic:
    """The logic replaced: the parameter node as a stand-in for Slicer's wrapper, the engine installed or not."""

    def __init__(self, declared: type, engine: bool = True, runner: Runner | None = None):
        self.node, self.engine, self.runner, self.asked = ParameterNodeStandIn(declared), engine, runner or Runner(), 0

    def getParameterNode(self):
        return self.node

    def ensureEngine(self) -> bool:
        self.asked += 1
        return self.engine


@pytest.fixture
def open_widget(SpineNet, scene):
    """``open_widget(logic)``: the widget as ``setup`` leaves it, on plain widgets; cleaned up as Slicer
    does (observers removed) before the scene goes."""
    opened = []

    def open_with(logic: Logic):
        widget = SpineNet.SpineNetWidget(types.SimpleNamespace(isEntered=True), logic=logic)
        widget.ui, widget.timer = widgets(), types.SimpleNamespace(start=lambda: None, stop=lambda: None)
        widget.startWorking()
        opened.append(widget)
        return widget

    yield open_with
    for widget in opened:
        widget.cleanup()


def test_the_parameter_node_holds_every_setting_of_a_run(SpineNet):
    declared = SpineNet.SpineNetParameterNode.__annotations__
    assert list(declared) == ["input_volume", "t1_volume", "axial_volume", *(f.name for f in fields(SpineNetParameters))]
    assert declared["augmentations"].__metadata__[0].maximum == SpineNet.MAX_AUGMENTATIONS
    node = ParameterNodeStandIn(SpineNet.SpineNetParameterNode)
    SpineNet.storeSettings(node, CHOSEN)
    assert node.hotspot_tasks == ["modic", "herniation"]  # the wrapper keeps lists
    assert SpineNet.settingsOf(node) == CHOSEN
    with pytest.raises(ValueError):  # a new node has no method until the engine's defaults are stored
        SpineNet.settingsOf(ParameterNodeStandIn(SpineNet.SpineNetParameterNode))
    with pytest.raises(ValueError):
        SpineNetParameters(method="sharpest")


#: the widget classes slicer.parameterNodeWrapper binds to each field type (its GUI connectors)
BINDABLE = {bool: "QCheckBox", int: "QSpinBox", slicer.vtkMRMLScalarVolumeNode: "qMRMLNodeComboBox"}


def test_the_ui_binds_widgets_the_wrapper_can_bind_to_declared_fields(SpineNet):
    """A SlicerParameterName that is no field, or a widget the wrapper has no connector for, fails in Slicer only."""
    ui = ET.parse(SLICER_MODULE / "Resources" / "UI" / "SpineNet.ui")
    bound = {w.find("property[@name='SlicerParameterName']/string").text: w.get("class")
             for w in ui.iter("widget") if w.find("property[@name='SlicerParameterName']") is not None}
    hints = typing.get_type_hints(SpineNet.SpineNetParameterNode)  # Annotated[int, ...] → int
    assert bound == {name: BINDABLE[hints[name]]
                     for name in ("input_volume", "t1_volume", "axial_volume", "tta", "augmentations", "all_slices")}


def test_a_new_parameter_node_gets_the_engine_defaults_and_the_first_volume(SpineNet, scene, open_widget):
    volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "T2")
    logic = Logic(SpineNet.SpineNetParameterNode)
    widget = open_widget(logic)
    assert SpineNet.settingsOf(logic.node) == SpineNetParameters()
    assert logic.node.input_volume is volume and logic.node.bound is widget.ui
    assert logic.node.t1_volume is None and logic.node.axial_volume is None  # the other streams are chosen, not guessed
    assert widget.ui.methodComboBox.items == [m.value for m in Method] and widget.ui.optionsCollapsibleButton.enabled
    assert widget.ui.applyButton.enabled and logic.asked == 0  # opening the module installs nothing


def test_a_stored_parameter_node_is_shown_not_reset(SpineNet, scene, open_widget):
    logic = Logic(SpineNet.SpineNetParameterNode)
    SpineNet.storeSettings(logic.node, CHOSEN)
    widget = open_widget(logic)
    assert SpineNet.settingsOf(logic.node) == CHOSEN
    assert (widget.ui.graderPathLineEdit.currentPath, widget.ui.methodComboBox.currentText) == (CHOSEN.grader_model,
                                                                                                "excitation")
    assert not widget.ui.applyButton.enabled  # no volume in the scene
    widget.onGraderChanged("/other/grader.pt")
    widget.onMethodChanged("backprop")
    assert (logic.node.grader_model, logic.node.method) == ("/other/grader.pt", "backprop")
    logic.node.input_volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
    assert widget.ui.applyButton.enabled  # the node's ModifiedEvent updates the widget


def test_apply_asks_for_the_engine_and_runs_nothing_when_declined(SpineNet, scene, open_widget):
    scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
    logic = Logic(SpineNet.SpineNetParameterNode, engine=False)
    widget = open_widget(logic)
    widget.onApply()
    assert logic.asked == 1 and logic.runner.calls == [] and widget.job is None


def test_a_job_runs_the_node_settings_and_closing_the_scene_cancels_it(SpineNet, scene, open_widget):
    volume, t1, axial = (scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name) for name in ("T2", "T1", "AX"))
    logic = Logic(SpineNet.SpineNetParameterNode)
    widget = open_widget(logic)
    SpineNet.storeSettings(logic.node, CHOSEN)
    logic.node.t1_volume, logic.node.axial_volume = t1, axial
    node = logic.node  # what Apply starts, under a wait cursor:
    widget.start(node.input_volume, SpineNet.settingsOf(node), node.t1_volume, node.axial_volume)
    assert logic.runner.started.wait(10)
    assert logic.runner.calls == [("inputs", node_ids(volume, t1, axial)),
                                  ("analyse", f"series of {volume.GetID()}", CHOSEN)]
    assert widget.ui.cancelButton.enabled and not widget.ui.applyButton.enabled

    job, bindings = widget.job, len(logic.node.bindings)
    scene.Clear()  # File → Close scene: StartCloseEvent cancels and unbinds, EndCloseEvent binds the scene's node
    assert job.wait(10) and job.cancelled and isinstance(job.error, Cancelled)
    assert logic.node.bindings[bindings:] == ["disconnect", "connect"] and logic.node.bound is widget.ui
    widget.onPoll()
    assert widget.job is None and widget.ui.statusLabel.text == "Cancelled." and not widget.ui.cancelButton.enabled


def test_a_failed_job_shows_its_one_line_error(SpineNet, scene, open_widget, monkeypatch):
    """A T1 of another geometry (the runner's StreamError) ends the job with the engine's one line."""
    volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "T2")
    error = StreamError("T1 elsewhere", "the T1 series does not overlap any disc of the sagittal T2")
    logic = Logic(SpineNet.SpineNetParameterNode, runner=Runner(error))
    widget = open_widget(logic)
    shown = []
    monkeypatch.setattr(slicer.util, "errorDisplay", shown.append)
    widget.start(volume, SpineNet.settingsOf(logic.node))
    assert widget.job.wait(10)
    assert logic.runner.calls[0] == ("inputs", node_ids(volume, None))  # no T1, no axial
    widget.onPoll()
    assert widget.ui.statusLabel.text == f"Failed: {error}" and "\n" not in widget.ui.statusLabel.text
    assert shown == [f"SpineNet failed: {error}"] and widget.job is None and widget.ui.applyButton.enabled
