"""SpineNetSlicer library: spinecore results → MRML nodes, with no Qt. The module file
``SpineNet.py`` stays thin; batch scripts and tests use this package directly.

- :mod:`SpineNetLib.bridge`: the RAS ⇄ LPS edge (volume nodes ⇄ spinecore series)
- :mod:`SpineNetLib.logic`: :class:`SpineNetRunner` (volume nodes: the scan, its optional T1 and axial → spinecore → nodes)
- :mod:`SpineNetLib.outputs`: the segmentation, closed curves, heatmap volumes and table
- :mod:`SpineNetLib.saving`: ``.seg.nrrd``, ``.mrk.json``, ``.nrrd``, ``.csv`` and ``.mrb`` files
- :mod:`SpineNetLib.parameters`: the settings of a run (SpineNet.py keeps them in the parameter node)
- :mod:`SpineNetLib.jobs`: the worker thread that keeps the GUI responsive
- :mod:`SpineNetLib.headless`: an MRML scene without the Slicer application (slicer-core)
- :mod:`SpineNetLib.install`: what to install into Slicer's Python before the first Apply
"""
