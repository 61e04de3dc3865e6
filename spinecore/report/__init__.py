"""The only writer of result files (output folders, summaries, volumes)."""
from spinecore.report.output import staged_output
from spinecore.report.series import write_series_summary, write_series_volumes

__all__ = ["staged_output", "write_series_summary", "write_series_volumes"]
