"""Cohorts: ``spinecore batch`` grades every study under a folder on a Dask cluster."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spinecore.cli.common import Commands, hotspots, model, option, out, positive_int
from spinecore.errors import SpineCoreError

COMMANDS = Commands()
COHORT_MODULES = ("dask", "distributed", "tqdm")  # the ``cohort`` extra of setup.py
EXIT_SOME_FAILED = 1


def cluster(parser: argparse.ArgumentParser) -> None:
    """``--workers N`` (a local cluster) or ``--scheduler ADDRESS`` (an existing one)."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int,
                       help="worker processes of the local cluster (default: one per core)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="grade on the running Dask cluster at ADDRESS (e.g. tcp://10.0.0.5:8786)")


@COMMANDS("batch", "grade every study under a folder on a Dask cluster, resumably: <study>/, cohort.csv, "
          "cohort.png, failures.csv",
          option("input", type=Path, help="folder of studies (volume files, .zip files, DICOM folders)"),
          out(), cluster, model("grading"), model("localiser", "--localiser"),
          option("--no-tta", action="store_true", help="one view per disc instead of the 54-view average"),
          option("--dicom-out", action="store_true",
                 help="also write each study's seg.dcm and sr.dcm as grade --dicom-out does (non-DICOM studies fail)"),
          hotspots)
def run_batch(args: argparse.Namespace) -> int:
    try:
        from tqdm import tqdm

        from spinecore.batch import checked_options, find_cohort, grade_cohort
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in COHORT_MODULES:
            raise
        raise SpineCoreError(None, f"spinecore batch needs {exc.name}: install spinecore[cohort] "
                                   "(pip install 'spinecore[cohort]')") from None
    from spinecore.report.analysis import DICOM_FILES, HOTSPOTS_FOLDER, require_highdicom
    from spinecore.saliency import Method

    if args.dicom_out:
        require_highdicom()
    _, tasks = checked_options(args.localiser, args.model, args.hotspots)  # before the progress bar shows
    cohort = find_cohort(args.input, args.out, (DICOM_FILES if args.dicom_out else ()) + ((HOTSPOTS_FOLDER,) if tasks else ()))
    todo = len(cohort.todo())
    with tqdm(total=len(cohort.studies), initial=len(cohort.studies) - todo, unit="study", file=sys.stderr,
              dynamic_ncols=True) as bar:
        failed = []

        def done(name: str, reason: str | None) -> None:
            if reason:
                failed.append(name)
            bar.set_postfix(failed=len(failed), refresh=False)
            bar.update()

        failures = grade_cohort(cohort, workers=args.workers, scheduler=args.scheduler, localiser=args.localiser,
                                grader=args.model, done=done, dicom_out=args.dicom_out, hotspots=args.hotspots,
                                tta=not args.no_tta, method=Method(args.method), augmentations=args.augmentations)
    print(f"{len(cohort.studies) - len(failures)} of {len(cohort.studies)} studies graded "
          f"({len(cohort.studies) - todo} already done); {len(failures)} failed; wrote {args.out / 'cohort.csv'}"
          f"{', ' + str(args.out / 'failures.csv') if failures else ''}")
    return EXIT_SOME_FAILED if failures else 0
