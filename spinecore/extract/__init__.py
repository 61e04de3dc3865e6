"""Extraction: per-disc and per-vertebra volumes with their map back to the scan (thesis 4.1.1)."""
from spinecore.extract.volumes import (DISC_SHAPE, VERTEBRA_SHAPE, StructureVolume, disc_volume, disc_volumes,
                                       vertebra_volume, vertebra_volumes)

__all__ = ["DISC_SHAPE", "VERTEBRA_SHAPE", "StructureVolume", "disc_volume", "disc_volumes", "vertebra_volume",
           "vertebra_volumes"]
