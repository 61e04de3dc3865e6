"""spinecore: reads lumbar spine MRI like an expert (SpineNet, rebuilt).

Pipeline: io → localise → extract → grade → saliency → report.
"""
from spinecore.errors import SpineCoreError
from spinecore.geometry import Geometry
from spinecore.io import Plane, Series, Study, Weighting, load_study

__version__ = "0.1.0"
__all__ = ["Geometry", "Plane", "Series", "SpineCoreError", "Study", "Weighting", "load_study", "__version__"]
