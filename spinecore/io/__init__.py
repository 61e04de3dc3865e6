"""Scan input: DICOM folders, zips and files, NIfTI / NRRD / MetaImage volumes.

See :mod:`spinecore.io.series` for the reader contract (array layout, orientation, geometry).
"""
from spinecore.io.loader import companion_series, find_studies, load_study
from spinecore.io.series import Plane, Series, Study, Weighting

__all__ = ["companion_series", "find_studies", "load_study", "Plane", "Series", "Study", "Weighting"]
