"""The only writer of result files (output folders, summaries, volumes, gradings, evaluations);
model files are written by :func:`spinecore.models.save_model`."""
from spinecore.report.analysis import check_dicom_out, require_highdicom, write_analysis
from spinecore.report.gradings import write_grading_overview, write_gradings_csv, write_gradings_json
from spinecore.report.hotspots import write_hotspots
from spinecore.report.localisation import write_overview, write_vertebrae_json
from spinecore.report.output import staged_output
from spinecore.report.series import write_series_summary, write_series_volumes
from spinecore.report.slices import write_slice_images
from spinecore.report.volumes import write_structure_volumes

__all__ = ["check_dicom_out", "staged_output", "write_analysis", "write_grading_overview", "write_gradings_csv", "write_gradings_json",
           "require_highdicom", "write_hotspots", "write_overview", "write_series_summary", "write_series_volumes",
           "write_slice_images", "write_structure_volumes", "write_vertebrae_json"]
