"""The everyday commands: ``info``, ``convert``, ``localise``, ``grade``, ``extract``, ``bench``.

A handler reads its scan before importing torch and what needs it (seconds): a bad input fails at once."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from spinecore.cli.common import (Commands, any_study, hotspots, model, option, out, positive_int, read_sagittal,
                                  read_study, sagittal_study, streams_list)
from spinecore.io import companion_series
from spinecore.io.series import Weighting

COMMANDS = Commands()


@COMMANDS("info", "list the series of a study: plane, weighting, shape, spacing, origin", any_study,
          option("--json", action="store_true", help="print JSON (with the full affine) instead of text"))
def run_info(args: argparse.Namespace) -> int:
    study = read_study(args)
    if args.json:
        print(json.dumps({"source": study.source, "series": [s.summary() for s in study.series]}, indent=1))
        return 0
    print(f"{study.source}: {len(study.series)} series")
    for n, s in enumerate(study.series, start=1):
        spacing = " x ".join(f"{v:.3f}" for v in s.spacing)
        origin = ", ".join(f"{v:.1f}" for v in s.geometry.origin)
        shape = " x ".join(str(v) for v in s.shape)
        print(f"  [{n}] {s.plane.value:<8} {s.weighting.value:<7} shape {shape} (slices x rows x cols)  "
              f"spacing {spacing} mm  origin LPS ({origin}) mm  {s.description}")
    return 0


@COMMANDS("convert", "write the sagittal series (or all) as canonical NIfTI + series.json", any_study, out(),
          option("--all", action="store_true", help="convert every series, not only the sagittal one"))
def run_convert(args: argparse.Namespace) -> int:
    study = read_study(args)
    from spinecore.report import staged_output, write_series_summary, write_series_volumes

    series = list(study.series) if args.all else [study.sagittal()]
    with staged_output(args.out) as stage:
        written = write_series_volumes(series, stage)
        write_series_summary(series, study.source, stage / "series.json")
    for path in written:
        print(args.out / path.name)
    return 0


@COMMANDS("localise", "find, label and outline the vertebrae: vertebrae.json + overview.png", sagittal_study,
          model("localiser"))
def run_localise(args: argparse.Namespace) -> int:
    series = read_sagittal(args)
    from spinecore.localise import Localiser
    from spinecore.report import staged_output, write_overview, write_vertebrae_json

    localiser = Localiser.load(args.model)
    spine = localiser(series)
    with staged_output(args.out) as stage:
        write_vertebrae_json(spine, stage / "vertebrae.json")
        write_overview(series, spine, stage / "overview.png")
    print(f"{series.description or series.source}: {', '.join(spine.levels)}; wrote {args.out / 'vertebrae.json'} "
          f"and {args.out / 'overview.png'}")
    return 0


@COMMANDS("grade", "localise and grade every disc: gradings.csv/.json, vertebrae.json, overview.png", sagittal_study,
          option("--model", type=Path, help="grading model file (default: the bundled T2 grader, or the bundled "
                                            "T1 + T2 grader when there is a sagittal T1)"),
          model("localiser", "--localiser"),
          option("--no-tta", action="store_true", help="one view per disc instead of the 54-view average"),
          hotspots,
          option("--dicom-out", action="store_true",
                 help="DICOM input: also write seg.dcm (DICOM SEG of the bodies and discs) and sr.dcm (DICOM SR "
                      "measurement report of the gradings); needs the 'dicom' extra"),
          option("--t1", type=Path, help="the same patient's sagittal T1 (file, DICOM folder or zip), for a model "
                                         "that reads T1 (default: a sagittal T1 series of the study, if any)"),
          option("--axial", type=Path, help="the same patient's axial series (file, DICOM folder or zip: all its "
                                            "axial series), for a model that reads axial (default: the study's)"))
def run_grade(args: argparse.Namespace) -> int:
    study = read_study(args)
    series = study.sagittal(Weighting(args.weighting))
    from spinecore.grade import Grader
    from spinecore.localise import Localiser
    from spinecore.pipeline import analyse
    from spinecore.report import check_dicom_out, write_analysis
    from spinecore.report.gradings import streams_note, unused_streams_note
    from spinecore.saliency import Method
    from spinecore.saliency.settings import hotspot_tasks

    if args.dicom_out:
        check_dicom_out(series, args.input)
    t1, axials = companion_series(study, series, args.t1, args.axial, max_archive_bytes=args.max_archive_mb * 1024**2)
    localiser, grader = Localiser.load(args.localiser), Grader.load(args.model, t1=t1 is not None)
    result = analyse(series, localiser, grader, tta=not args.no_tta,
                     hotspot_tasks=hotspot_tasks(args.hotspots, grader.scheme.task_names), method=Method(args.method),
                     augmentations=args.augmentations, t1=t1, axials=axials, t1_optional=args.t1 is None)
    write_analysis(result, args.out, dicom_out=args.dicom_out)
    levels = ", ".join(d.level for d in result.gradings.discs) or "none"
    extras = "".join(name for name, wanted in ((", hotspots/", result.hotspots), (", seg.dcm, sr.dcm", args.dicom_out))
                     if wanted)
    note = unused_streams_note(result.gradings.model_streams, result.unused_streams, result.unused_reasons)
    print(f"{series.description or series.source}: graded discs {levels}; {streams_note(result.gradings)}{note}; "
          f"wrote gradings.csv, gradings.json, vertebrae.json, overview.png{extras} to {args.out}")
    return 0


@COMMANDS("extract", "write the disc (9x112x224) and vertebral-body (9x224x224) volumes the models see, as NIfTI "
          "in patient space (discs/, vertebrae/)", sagittal_study, model("localiser", "--localiser"))
def run_extract(args: argparse.Namespace) -> int:
    series = read_sagittal(args)
    from spinecore.extract import disc_volumes, vertebra_volumes
    from spinecore.localise import Localiser
    from spinecore.report import staged_output, write_structure_volumes

    spine = Localiser.load(args.localiser)(series)
    with staged_output(args.out) as stage:
        discs = write_structure_volumes(disc_volumes(series, spine), stage / "discs")
        bodies = write_structure_volumes(vertebra_volumes(series, spine), stage / "vertebrae")
    print(f"{series.description or series.source}: wrote {len(discs)} disc and {len(bodies)} vertebral-body "
          f"volumes to {args.out}")
    return 0


@COMMANDS("bench", "time localisation, grading and hotspots on a phantom study, or spinecore batch on a phantom "
          "cohort", model("localiser"), model("grading", "--grader"),
          option("--slices", type=positive_int, default=15, help="sagittal slices (default %(default)s)"),
          option("--repeats", type=positive_int, default=5, help="timed runs (default %(default)s)"),
          option("--cohort", type=positive_int, metavar="N",
                 help="instead: studies per hour of spinecore batch on N phantom studies with 1 and 2 workers"),
          option("--serve", type=positive_int, metavar="N",
                 help="instead: load check of spinecore serve: N concurrent uploads, time to result, peak memory"),
          option("--jobs", type=positive_int, default=1,
                 help="with --serve: the server's --jobs (default %(default)s)"),
          option("--streams", type=streams_list, default=("t2",),
                 help="grading and hotspots: the streams of the phantom study, comma-separated, e.g. t2,t1 (default "
                      "t2; t2,t1 takes the bundled T1 + T2 grader; an axial stream needs a --grader that reads it)"))
def run_bench(args: argparse.Namespace) -> int:
    from spinecore.bench import bench_cohort, bench_grade, bench_hotspots, bench_localise, stream_grader

    if args.serve:
        from spinecore.serve.loadcheck import load_check

        results = [load_check(args.serve, jobs=args.jobs, n_slices=args.slices)]
    elif args.cohort:
        results = [bench_cohort(args.cohort, n_slices=args.slices, localiser_model=args.model, model=args.grader)]
    else:
        stream_grader(args.grader, args.streams)  # a grader that cannot read the streams: an error before any work
        results = [bench_localise(args.model, n_slices=args.slices, repeats=args.repeats),
                   bench_grade(args.grader, args.model, n_slices=args.slices, repeats=args.repeats,
                               streams=args.streams),
                   bench_hotspots(args.grader, args.model, streams=args.streams)]
    print(json.dumps(results, indent=1))
    return 0
