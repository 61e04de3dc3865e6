"""Localisation: find, label (T10..S1) and outline the vertebral bodies of a sagittal series.

>>> from spinecore.io import load_study
>>> from spinecore.localise import localise
>>> spine = localise(load_study("scan.nii.gz").sagittal())      # doctest: +SKIP
>>> [v.level for v in spine.vertebrae]                            # doctest: +SKIP
['T12', 'L1', 'L2', 'L3', 'L4', 'L5', 'S1']
"""
from spinecore.localise.localiser import Localiser, localise
from spinecore.localise.masks import structure_masks
from spinecore.localise.measure import DiscMeasurements, body_size, disc_depth, measure_disc
from spinecore.localise.quads import CORNER_NAMES, quad_from_region
from spinecore.localise.spine import Disc, Spine, Vertebra, VertebraSlice, discs_between

__all__ = ["CORNER_NAMES", "Disc", "DiscMeasurements", "Localiser", "Spine", "Vertebra", "VertebraSlice",
           "body_size", "disc_depth", "discs_between", "localise", "measure_disc", "quad_from_region",
           "structure_masks"]
