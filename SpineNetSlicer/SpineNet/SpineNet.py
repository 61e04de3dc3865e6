"""SpineNet: lumbar spine MRI analysis in 3D Slicer (thin module; the work is in spinecore
and SpineNetLib)."""
import logging

import slicer
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)


class SpineNet(ScriptedLoadableModule):
    def __init__(self, parent):
        super().__init__(parent)
        parent.title = "SpineNet"
        parent.categories = ["Segmentation"]
        parent.contributors = ["spinecore developers"]
        parent.helpText = ("Finds and labels lumbar vertebrae (T12..S1) on sagittal MRI, grades each disc and "
                           "shows where the evidence is. Engine: the spinecore Python package.")
        parent.acknowledgementText = ("Rebuilds SpineNet (A. Jamaludin, DPhil thesis, University of Oxford, 2017). "
                                      "Sample data: SPIDER (CC-BY 4.0).")


class SpineNetWidget(ScriptedLoadableModuleWidget):
    def setup(self):
        super().setup()
        import ctk
        import qt

        box = ctk.ctkCollapsibleButton()
        box.text = "Input"
        self.layout.addWidget(box)
        form = qt.QFormLayout(box)
        self.volumeSelector = slicer.qMRMLNodeComboBox()
        self.volumeSelector.nodeTypes = ["vtkMRMLScalarVolumeNode"]
        self.volumeSelector.setMRMLScene(slicer.mrmlScene)
        form.addRow("Sagittal scan:", self.volumeSelector)
        self.describeButton = qt.QPushButton("Describe scan")
        form.addRow(self.describeButton)
        self.resultLabel = qt.QLabel("")
        self.resultLabel.wordWrap = True
        form.addRow(self.resultLabel)
        self.describeButton.connect("clicked(bool)", self.onDescribe)
        self.layout.addStretch(1)
        self.logic = SpineNetLogic()

    def onDescribe(self):
        node = self.volumeSelector.currentNode()
        if node is None:
            self.resultLabel.text = "Select a volume first."
            return
        with slicer.util.tryWithErrorDisplay("Could not read the volume.", waitCursor=True):
            summary = self.logic.describe(node)
            self.resultLabel.text = (f"{summary['plane']} {summary['weighting']}, {summary['shape']} voxels, "
                                     f"spacing {summary['spacing_mm']} mm (slice, row, column)")


class SpineNetLogic(ScriptedLoadableModuleLogic):
    """No Qt here: usable from the Python console and batch scripts."""

    def describe(self, volumeNode) -> dict:
        from SpineNetLib import series_from_volume_node

        return series_from_volume_node(volumeNode).summary()


class SpineNetTest(ScriptedLoadableModuleTest):
    def runTest(self):
        slicer.mrmlScene.Clear()
        self.test_describe_sample()

    def test_describe_sample(self):
        import os

        sample = os.path.join(os.path.dirname(__file__), "..", "..", "Resources", "SampleData", "sample_lumbar_t2.nii.gz")
        node = slicer.util.loadVolume(sample)
        summary = SpineNetLogic().describe(node)
        self.assertEqual(summary["plane"], "sagittal")
        self.assertEqual(summary["shape"], [11, 585, 329])
        logging.info("SpineNet self-test passed")
