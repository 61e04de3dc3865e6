"""SpineNet: lumbar spine MRI analysis in 3D Slicer. A thin module: the work is in spinecore
(the engine) and SpineNetLib (results → MRML, no Qt), beside this file."""
import logging
from pathlib import Path

import slicer
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

# Nothing heavy at module load: spinecore and torch are imported on first use (Testing/test_slicer_module.py)
MODULE_DIR = Path(__file__).resolve().parent


def engine_installed() -> bool:
    from SpineNetLib.install import engine_facts, plan_install

    return not plan_install(engine_facts(MODULE_DIR)).needed


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
    """Thin: the settings live in the logic's parameter node (SpineNetLib.parameters, saved with the
    scene), the work in SpineNetLib. Scene close cancels a running job; errors go to a dialog."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.job = None
        self.modelsWanted = False  # models (and torch) load on the first Apply, never on opening the module

    def setup(self):
        super().setup()
        import qt

        self.ui = slicer.util.childWidgetVariables(self._loadUI())
        self.logic = SpineNetLogic()
        self.timer = qt.QTimer()
        self.timer.setInterval(100)
        self.timer.connect("timeout()", self.onPoll)
        self.ui.inputSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onInputChanged)
        self.ui.graderPathLineEdit.connect("currentPathChanged(QString)", self.onGraderChanged)
        self.ui.applyButton.connect("clicked(bool)", self.onApply)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndImportEvent, self.onSceneEndImport)
        self.initializeParameterNode()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        """Keep what the user set in the parameter node (saved with the scene)."""
        self.storeParameters()

    def onSceneStartClose(self, caller, event):
        self.onCancel()

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def onSceneEndImport(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        """Show the scene's settings (defaults in a new scene) once the engine is there."""
        self.onGraderChanged()
        if engine_installed():
            self.showEngineChoices()
            self.showParameters()
        self.onInputChanged(self.ui.inputSelector.currentNode())

    def storeParameters(self):
        if not engine_installed() or not self.ui.methodComboBox.count:
            return
        with slicer.util.tryWithErrorDisplay("Could not keep the SpineNet settings."):
            self.parameters().write(self.logic.getParameterNode())

    def onInputChanged(self, node):
        self.ui.applyButton.enabled = node is not None and self.job is None

    def onGraderChanged(self, *_):
        """Show the chosen grader's scheme and offer its tasks for hotspots."""
        import qt

        self.ui.hotspotTasksList.clear()
        if not engine_installed():
            self.ui.schemeLabel.text = "spinecore is not installed yet: Apply offers to install it."
            return
        if not self.modelsWanted:
            self.ui.schemeLabel.text = "The models load on the first Apply; the grader's tasks show then."
            return
        with slicer.util.tryWithErrorDisplay("Could not read the grader model.", waitCursor=True):
            grader = self.logic.runner.grader(self.ui.graderPathLineEdit.currentPath)
            self.ui.schemeLabel.text = f"{grader.scheme.name}: {', '.join(grader.scheme.task_names)}"
            for task in grader.scheme.task_names:
                item = qt.QListWidgetItem(task, self.ui.hotspotTasksList)
                item.setFlags(item.flags() | qt.Qt.ItemIsUserCheckable)
                item.setCheckState(qt.Qt.Unchecked)

    def showEngineChoices(self):
        """Offer the engine's saliency methods and default augmentations (once it is installed)."""
        from spinecore.saliency.settings import DEFAULT_AUGMENTATIONS, Method

        if not self.ui.methodComboBox.count:
            self.ui.methodComboBox.addItems([m.value for m in Method])
            self.ui.augmentationsSpinBox.value = DEFAULT_AUGMENTATIONS

    def showParameters(self):
        """Put the settings kept in the parameter node (saved with the scene) into the widgets."""
        import qt
        from SpineNetLib.parameters import SpineNetParameters

        node = self.logic.getParameterNode()
        params = SpineNetParameters.read(node)
        if node.GetNodeReference("InputVolume") is not None:
            self.ui.inputSelector.setCurrentNode(node.GetNodeReference("InputVolume"))
        self.ui.graderPathLineEdit.currentPath = params.grader_model
        self.ui.localiserPathLineEdit.currentPath = params.localiser_model
        self.ui.ttaCheckBox.checked, self.ui.allSlicesCheckBox.checked = params.tta, params.all_slices
        self.ui.methodComboBox.currentText, self.ui.augmentationsSpinBox.value = params.method, params.augmentations
        for i in range(self.ui.hotspotTasksList.count):
            item = self.ui.hotspotTasksList.item(i)
            item.setCheckState(qt.Qt.Checked if item.text() in params.hotspot_tasks else qt.Qt.Unchecked)

    def parameters(self):
        import qt
        from SpineNetLib.parameters import SpineNetParameters

        items = [self.ui.hotspotTasksList.item(i) for i in range(self.ui.hotspotTasksList.count)]
        tasks = tuple(i.text() for i in items if i.checkState() == qt.Qt.Checked)
        if not items:  # grader not loaded yet: keep the stored choice
            tasks = SpineNetParameters.read(self.logic.getParameterNode()).hotspot_tasks
        return SpineNetParameters(
            grader_model=self.ui.graderPathLineEdit.currentPath, localiser_model=self.ui.localiserPathLineEdit.currentPath,
            tta=self.ui.ttaCheckBox.checked, hotspot_tasks=tasks,
            method=self.ui.methodComboBox.currentText, augmentations=self.ui.augmentationsSpinBox.value,
            all_slices=self.ui.allSlicesCheckBox.checked)

    def onApply(self):
        with slicer.util.tryWithErrorDisplay("Could not install the SpineNet engine."):
            if not self.logic.ensureEngine():
                return
        self.showEngineChoices()
        from SpineNetLib.jobs import BackgroundJob

        if not self.modelsWanted:
            self.storeParameters()
            self.modelsWanted = True
            self.onGraderChanged()
            self.showParameters()  # the stored hotspot tasks, now that the grader's tasks are listed
        with slicer.util.tryWithErrorDisplay("Could not start SpineNet.", waitCursor=True):
            self.node, self.params = self.ui.inputSelector.currentNode(), self.parameters()
            self.params.write(self.logic.getParameterNode())
            self.logic.getParameterNode().SetNodeReferenceID("InputVolume", self.node.GetID())
            series = self.logic.runner.series(self.node)  # read the voxels here, in the GUI thread
            self.job = BackgroundJob(lambda progress: self.logic.runner.analyse(series, self.params, progress)).start()
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
        self.onInputChanged(self.ui.inputSelector.currentNode())
        if job.cancelled or self.node.GetScene() is None:  # cancelled, or its scene closed before the last poll
            self.ui.statusLabel.text, self.ui.progressBar.value = "Cancelled.", 0
        elif job.error is not None:
            self.ui.statusLabel.text = f"Failed: {job.error}"
            slicer.util.errorDisplay(f"SpineNet failed: {job.error}")
        else:
            outputs = self.logic.runner.show(self.node, job.result, self.params)
            self.ui.resultsTableView.setMRMLTableNode(outputs.table)
            heatmap = next(iter(outputs.heatmaps.values()), None)
            slicer.util.setSliceViewerLayers(background=self.node, foreground=heatmap, foregroundOpacity=0.5)
            graded = ", ".join(d.level for d in job.result.gradings.discs) or "no discs"
            self.ui.statusLabel.text = f"Graded {graded}."

    def cleanup(self):
        self.onCancel()
        self.timer.stop()
        self.removeObservers()


class SpineNetLogic(ScriptedLoadableModuleLogic):
    """No Qt: usable from the Python console. ``SpineNetLogic().run(volumeNode)`` grades a volume
    and returns ``(analysis, outputs)``; see SpineNetLib.logic.SpineNetRunner."""

    def __init__(self):
        super().__init__()
        self._runner = None

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

    def run(self, volumeNode, parameters=None, progress=None):
        return self.runner.run(volumeNode, parameters, progress)


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
