"""The only writer of result files (output folders, summaries, volumes)."""
from spinecore.report.localisation import write_overview, write_vertebrae_json
from spinecore.report.output import staged_output
from spinecore.report.series import write_series_summary, write_series_volumes

__all__ = ["staged_output", "write_overview", "write_vertebrae_json", "write_series_summary", "write_series_volumes"]
