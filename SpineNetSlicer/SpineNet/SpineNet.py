"""SpineNet: lumbar spine MRI analysis in 3D Slicer. A thin module: the work is in spinecore
(the engine) and SpineNetLib (results → MRML, no Qt), beside this file."""
import logging
from dataclasses import fields
from pathlib import Path
from typing import Annotated

import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

# Nothing heavy at module load: spinecore and torch are imported on first use (Testing/test_slicer_module.py)
MODULE_DIR = Path(__file__).resolve().parent
MAX_AUGMENTATIONS = 1000  # the augmentations spin box's upper end


def engine_installed() -> bool:
    from SpineNetLib.install import engine_facts, plan_install

    return not plan_install(engine_facts(MODULE_DIR)).needed


@parameterNodeWrapper
class SpineNetParameterNode:
    """The module's settings, kept in the scene's parameter node (saved with the scene): the input, the
    same patient's optional sagittal T1 and axial volumes (for a grader that reads them; None: not given)
    and the fields of SpineNetLib.parameters.SpineNetParameters under the same names. The widgets whose
    ``SlicerParameterName`` (SpineNet.ui) names a field are bound to it by ``connectGui``; the model
    paths, the hotspot tasks and the method are bound by SpineNetWidget (empty path: bundled model; the
    tasks and methods come from the engine). ``method`` is empty until the engine's defaults are
    stored (:func:`storeSettings` of ``SpineNetParameters()``, once the engine is installed)."""

    input_volume: vtkMRMLScalarVolumeNode
    t1_volume: vtkMRMLScalarVolumeNode
    axial_volume: vtkMRMLScalarVolumeNode
    grader_model: str
    localiser_model: str
    tta: bool
    hotspot_tasks: list[str]
    method: str
    augmentations: Annotated[int, WithinRange(1, MAX_AUGMENTATIONS)] = 1
    all_slices: bool


def settingsOf(parameterNode):
    """The settings a parameter node holds, as the runner takes them (a SpineNetParameters)."""
    from SpineNetLib.parameters import SpineNetParameters

    return SpineNetParameters(**{f.name: getattr(parameterNode, f.name) for f in fields(SpineNetParameters)})


def storeSettings(parameterNode, settings) -> None:
    """Keep ``settings`` (a SpineNetParameters) in the parameter node, field by field."""
    for f in fields(settings):
        value = getattr(settings, f.name)
        setattr(parameterNode, f.name, list(value) if isinstance(value, tuple) else value)


class SpineNet(ScriptedLoadableModule):
    def __init__(self, parent):
        super().__init__(parent)
        parent.title = "SpineNet"
        parent.categories = ["Segmentation"]
        parent.contributors = ["spinecore developers"]
        parent.helpText = ("Finds and labels lumbar vertebrae (T10..S1) on sagittal MRI, outlines every vertebral "
                           "body and disc, grades each disc (Pfirrmann, Modic, endplates, listhesis, herniation, "
                           "narrowing, bulging) and shows where the evidence is as heatmap volumes.")
        parent.acknowledgementText = ("Rebuilds SpineNet (A. Jamaludin, DPhil thesis, University of Oxford, 2017). "
                                      "Bundled models trained on SPIDER (CC-BY 4.0).")


class SpineNetWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Thin, as the scripted-module template: the settings live in a SpineNetParameterNode bound to
    the GUI (scene load and close show the scene's), the work in SpineNetLib. Scene close cancels a
    running job; errors go to a dialog (``tryWithErrorDisplay``). ``logic``: a SpineNetLogic unless
    given (a test gives another)."""

    def __init__(self, parent=None, logic=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = logic
        self.job = None
        self.streamNodes = (None, [])  # the T1 and axial nodes of the running job
        self.modelsWanted = False  # models (and torch) load on the first Apply, never on opening the module
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self):
        super().setup()
        import qt

        self.ui = slicer.util.childWidgetVariables(self._loadUI())
        self.timer = qt.QTimer()
        self.timer.setInterval(100)
        self.timer.connect("timeout()", self.onPoll)
        self.ui.graderPathLineEdit.connect("currentPathChanged(QString)", self.onGraderChanged)
        self.ui.localiserPathLineEdit.connect("currentPathChanged(QString)", self.onLocaliserChanged)
        self.ui.methodComboBox.connect("currentTextChanged(QString)", self.onMethodChanged)
        self.ui.hotspotTasksList.connect("itemChanged(QListWidgetItem*)", self.onHotspotTasksChanged)
        self.ui.applyButton.connect("clicked(bool)", self.onApply)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.startWorking()

    def startWorking(self):
        """Make the logic, observe the scene and show its parameter node (the Qt-free end of setup)."""
        if self.logic is None:
            self.logic = SpineNetLogic()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndImportEvent, self.onSceneEndImport)
        self.initializeParameterNode()

    def cleanup(self):
        self.onCancel()
        self.timer.stop()
        self.removeObservers()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        """Unbind the GUI; the settings stay in the parameter node (saved with the scene)."""
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event):
        self.onCancel()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def onSceneEndImport(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        """Bind the scene's parameter node; a new one gets the engine's defaults (once it is installed)
        and the scene's first volume."""
        self.setParameterNode(None)  # filling the method choices below must not write into the node
        installed = engine_installed()
        self.showEngineState(installed)
        node = self.logic.getParameterNode()
        if installed and not node.method:
            from SpineNetLib.parameters import SpineNetParameters

            storeSettings(node, SpineNetParameters())
        if node.input_volume is None:
            node.input_volume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
        self.setParameterNode(node)

    def setParameterNode(self, parameterNode):
        """Bind ``parameterNode`` (a SpineNetParameterNode, or None) to the GUI instead of the current one."""
        if self._parameterNode is not None:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
        self._parameterNode, self._parameterNodeGuiTag = parameterNode, None
        if parameterNode is not None:
            self._parameterNodeGuiTag = parameterNode.connectGui(self.ui)
            self.addObserver(parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
            self.onParameterNodeModified()

    def onParameterNodeModified(self, caller=None, event=None):
        """Show the settings ``connectGui`` does not bind, and whether Apply can run."""
        node = self._parameterNode
        for edit, path in ((self.ui.graderPathLineEdit, node.grader_model),
                           (self.ui.localiserPathLineEdit, node.localiser_model)):
            if edit.currentPath != path:
                edit.currentPath = path
        if node.method and self.ui.methodComboBox.currentText != node.method:
            self.ui.methodComboBox.currentText = node.method
        if self.ui.hotspotTasksList.count:  # the grader's tasks, listed once the models are loaded
            self.tickHotspotTasks()
        self.ui.applyButton.enabled = node.input_volume is not None and self.job is None

    def tickHotspotTasks(self):
        import qt

        for i in range(self.ui.hotspotTasksList.count):
            item = self.ui.hotspotTasksList.item(i)
            state = qt.Qt.Checked if item.text() in self._parameterNode.hotspot_tasks else qt.Qt.Unchecked
            if item.checkState() != state:
                item.setCheckState(state)

    def showEngineState(self, installed: bool):
        """Models and options are offered once the engine is installed (their choices come from it)."""
        self.ui.modelsCollapsibleButton.enabled = self.ui.optionsCollapsibleButton.enabled = installed
        if not installed:
            self.ui.schemeLabel.text = "spinecore is not installed yet: Apply offers to install it."
        elif not self.ui.methodComboBox.count:
            from spinecore.saliency.settings import Method

            self.ui.methodComboBox.addItems([m.value for m in Method])
            if not self.modelsWanted:
                self.ui.schemeLabel.text = "The models load on the first Apply; the grader's tasks show then."

    def onGraderChanged(self, path: str):
        if self._parameterNode is not None:
            self._parameterNode.grader_model = path
        if self.modelsWanted:
            self.showGraderTasks()

    def onLocaliserChanged(self, path: str):
        if self._parameterNode is not None:
            self._parameterNode.localiser_model = path

    def onMethodChanged(self, method: str):
        if self._parameterNode is not None and method:
            self._parameterNode.method = method

    def onHotspotTasksChanged(self, item=None):
        import qt

        if self._parameterNode is None:
            return
        items = [self.ui.hotspotTasksList.item(i) for i in range(self.ui.hotspotTasksList.count)]
        self._parameterNode.hotspot_tasks = [i.text() for i in items if i.checkState() == qt.Qt.Checked]

    def showGraderTasks(self):
        """Show the chosen grader's scheme and offer its tasks for hotspots (ticked as the parameter node says)."""
        import qt

        self.ui.hotspotTasksList.clear()
        with slicer.util.tryWithErrorDisplay("Could not read the grader model.", waitCursor=True):
            grader = self.logic.runner.grader(self._parameterNode.grader_model)
        self.ui.schemeLabel.text = f"{grader.scheme.name}: {', '.join(grader.scheme.task_names)}"
        wanted = self._parameterNode.hotspot_tasks
        wasBlocked = self.ui.hotspotTasksList.blockSignals(True)  # no half-listed tasks into the node
        try:
            for task in grader.scheme.task_names:
                item = qt.QListWidgetItem(task, self.ui.hotspotTasksList)
                item.setFlags(item.flags() | qt.Qt.ItemIsUserCheckable)
                item.setCheckState(qt.Qt.Checked if task in wanted else qt.Qt.Unchecked)  # shows the check box
        finally:
            self.ui.hotspotTasksList.blockSignals(wasBlocked)
        self.onHotspotTasksChanged()  # tasks this grader lacks are dropped

    def onApply(self):
        with slicer.util.tryWithErrorDisplay("Could not install the SpineNet engine."):
            if not self.logic.ensureEngine():
                return
        if not self.modelsWanted:
            self.modelsWanted = True
            self.initializeParameterNode()  # the engine's choices and defaults, now that it is installed
            self.showGraderTasks()
        with slicer.util.tryWithErrorDisplay("Could not start SpineNet.", waitCursor=True):
            node = self._parameterNode
            self.start(node.input_volume, settingsOf(node), node.t1_volume, node.axial_volume)

    def start(self, volumeNode, settings, t1Node=None, axialNode=None):
        """Read the volumes (GUI thread) and analyse them in a worker thread; :meth:`onPoll` shows the result."""
        from SpineNetLib.jobs import BackgroundJob

        self.node, self.params = volumeNode, settings
        self.streamNodes = (t1Node, [] if axialNode is None else [axialNode])
        inputs = self.logic.runner.inputs(volumeNode, *self.streamNodes)
        self.job = BackgroundJob(lambda progress: self.logic.runner.analyse(inputs, settings, progress)).start()
        self.ui.applyButton.enabled, self.ui.cancelButton.enabled = False, True
        self.timer.start()

    def onCancel(self):
        if self.job is not None:
            self.job.cancel()
            self.ui.statusLabel.text = "Cancelling…"

    def onPoll(self):
        fraction, message = self.job.progress
        self.ui.progressBar.value = int(100 * fraction)
        self.ui.statusLabel.text = message
        if not self.job.done:
            return
        self.timer.stop()
        job, self.job = self.job, None
        self.ui.cancelButton.enabled = False
        self.ui.applyButton.enabled = self._parameterNode is not None and self._parameterNode.input_volume is not None
        if job.cancelled or self.node.GetScene() is None:  # cancelled, or its scene closed before the last poll
            self.ui.statusLabel.text, self.ui.progressBar.value = "Cancelled.", 0
        elif job.error is not None:
            self.ui.statusLabel.text = f"Failed: {job.error}"
            slicer.util.errorDisplay(f"SpineNet failed: {job.error}")
        else:
            outputs = self.logic.runner.show(self.node, job.result, self.params, *self.streamNodes)
            self.ui.resultsTableView.setMRMLTableNode(outputs.table)
            heatmap = next(iter(outputs.heatmaps.values()), None)
            slicer.util.setSliceViewerLayers(background=self.node, foreground=heatmap, foregroundOpacity=0.5)
            summary = self.logic.runner.summary(job.result)
            logging.info(f"SpineNet, {self.node.GetName()}: {summary}")
            self.ui.statusLabel.text = f"Done: {summary}."


class SpineNetLogic(ScriptedLoadableModuleLogic):
    """No Qt: usable from the Python console. ``SpineNetLogic().run(volumeNode)`` grades a volume
    (with ``t1_node=`` / ``axial_nodes=`` the same patient's other series, for a grader that reads
    them) and returns ``(analysis, outputs)``; see SpineNetLib.logic.SpineNetRunner."""

    def __init__(self):
        super().__init__()
        self._runner = None

    def getParameterNode(self) -> SpineNetParameterNode:
        return SpineNetParameterNode(super().getParameterNode())

    @property
    def runner(self):
        if self._runner is None:
            from SpineNetLib.logic import SpineNetRunner

            self._runner = SpineNetRunner()
        return self._runner

    def ensureEngine(self) -> bool:
        """Install what SpineNetLib.install plans (spinecore from the extension's wheel or the checkout,
        torch through the PyTorch extension or pip), once the user agrees. False: not installed."""
        from SpineNetLib.install import engine_facts, plan_install, run_plan

        plan = plan_install(engine_facts(MODULE_DIR))
        if not plan.needed:
            return True
        if plan.problem:
            slicer.util.errorDisplay(plan.problem)
            return False
        if not slicer.util.confirmOkCancelDisplay(plan.confirmation(), "SpineNet: install the engine"):
            return False
        with slicer.util.WaitCursor():
            run_plan(plan, slicer.util.pip_install, self._installTorchWithPyTorchUtils)
        return engine_installed()

    @staticmethod
    def _installTorchWithPyTorchUtils(requirement: str):
        import PyTorchUtils

        if PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False, torchVersionRequirement=requirement) is None:
            raise RuntimeError("The PyTorch extension did not install PyTorch.")

    def run(self, volumeNode, parameters=None, progress=None, t1_node=None, axial_nodes=()):
        return self.runner.run(volumeNode, parameters, progress, t1_node, axial_nodes)


class SpineNetTest(ScriptedLoadableModuleTest):
    """Inside Slicer: the same path as the pytest suite runs on slicer-core."""

    def runTest(self):
        slicer.mrmlScene.Clear()
        self.test_sample()

    @staticmethod
    def sample() -> Path:
        """The checkout's bundled sample, else a phantom scan (an installed extension has no checkout)."""
        import tempfile

        from spinecore.phantom import PhantomSpec, make_phantom, write_phantom

        sample = MODULE_DIR.parents[1] / "Resources" / "SampleData" / "sample_lumbar_t2.nii.gz"
        if sample.is_file():
            return sample
        folder = Path(tempfile.mkdtemp(prefix="SpineNetTest-"))
        return write_phantom(make_phantom(PhantomSpec(seed=3)), folder)["nifti"] / "sag_t2.nii.gz"

    def test_sample(self):
        from SpineNetLib.parameters import SpineNetParameters

        node = slicer.util.loadVolume(str(self.sample()))
        analysis, outputs = SpineNetLogic().run(node, SpineNetParameters(hotspot_tasks=("pfirrmann",), augmentations=4))
        levels = analysis.spine.levels
        self.assertGreaterEqual(len(levels), 6)
        self.assertEqual(outputs.segmentation.GetSegmentation().GetNumberOfSegments(), len(levels) + len(analysis.spine.discs))
        self.assertEqual([c.GetName() for c in outputs.curves], levels)
        self.assertEqual(outputs.heatmaps["pfirrmann"].GetImageData().GetDimensions(), node.GetImageData().GetDimensions())
        self.assertEqual(outputs.table.GetNumberOfRows(), len(analysis.gradings.discs))
        logging.info("SpineNet self-test passed")
