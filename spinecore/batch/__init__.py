"""Cohorts: every study under a folder graded on a Dask cluster, resumably (``spinecore batch``).

:func:`find_cohort` names the studies and sees which are already done; :func:`grade_cohort` grades
the rest (one Dask task per study, models loaded once per worker) and rebuilds ``cohort.csv``,
``cohort.png`` and ``failures.csv`` from the study folders.
"""
from spinecore.batch.cohort import checked_options, grade_cohort
from spinecore.batch.layout import Cohort, find_cohort

__all__ = ["Cohort", "checked_options", "find_cohort", "grade_cohort"]
