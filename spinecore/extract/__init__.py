"""Extraction: per-disc and per-vertebra volumes with their map back to the scan (thesis 4.1.1), and the
disc volumes of the other streams (sagittal T1, axial; thesis 6.1.1, 6.2.1)."""
from spinecore.extract.streams import AXIAL_SHAPE, axial_disc_volumes, t1_disc_volumes
from spinecore.extract.volumes import (DISC_SHAPE, VERTEBRA_SHAPE, StructureVolume, disc_volume, disc_volumes,
                                       vertebra_volume, vertebra_volumes)

__all__ = ["AXIAL_SHAPE", "DISC_SHAPE", "VERTEBRA_SHAPE", "StructureVolume", "axial_disc_volumes", "disc_volume",
           "disc_volumes", "t1_disc_volumes", "vertebra_volume", "vertebra_volumes"]
