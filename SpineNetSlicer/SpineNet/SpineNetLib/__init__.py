"""SpineNetSlicer library: MRML ⇄ spinecore, with no Qt. The module file stays thin."""
from SpineNetLib.bridge import geometry_from_ijk_to_ras, series_from_volume_node

__all__ = ["geometry_from_ijk_to_ras", "series_from_volume_node"]
