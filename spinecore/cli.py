"""Command line: ``spinecore info | convert | phantom | localise | evaluate-localiser | bench | train-localiser``.

Argument parsing and error-to-exit-code only: input problems print one line
``spinecore: error: <file>: <reason>`` on stderr and exit with code 2.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from spinecore import __version__
from spinecore.errors import SpineCoreError, brief
from spinecore.io import load_study
from spinecore.io.archive import MAX_ARCHIVE_BYTES

EXIT_INPUT_ERROR = 2
EXIT_INTERNAL_ERROR = 1


def _cmd_info(args: argparse.Namespace) -> int:
    study = load_study(args.input, max_archive_bytes=args.max_archive_mb * 1024**2)
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


def _cmd_convert(args: argparse.Namespace) -> int:
    from spinecore.report import staged_output, write_series_summary, write_series_volumes

    study = load_study(args.input, max_archive_bytes=args.max_archive_mb * 1024**2)
    series = list(study.series) if args.all else [study.sagittal()]
    with staged_output(args.out) as stage:
        written = write_series_volumes(series, stage)
        write_series_summary(series, study.source, stage / "series.json")
    for path in written:
        print(args.out / path.name)
    return 0


def _cmd_phantom(args: argparse.Namespace) -> int:
    from spinecore.phantom import PhantomSpec, make_phantom, write_phantom
    from spinecore.report import staged_output

    spec = PhantomSpec(seed=args.seed, follow_up_years=args.follow_up or 0.0, top_level=args.top_level,
                       n_slices=args.slices)
    study = make_phantom(spec)
    with staged_output(args.out) as stage:
        write_phantom(study, stage)
    levels = [v["level"] for v in study.truth["vertebrae"]]
    print(f"wrote phantom seed {args.seed} ({', '.join(levels)}) to {args.out}")
    return 0


def _cmd_localise(args: argparse.Namespace) -> int:
    from spinecore.io.series import Weighting
    from spinecore.localise import Localiser
    from spinecore.report import staged_output, write_overview, write_vertebrae_json

    localiser = Localiser(args.model)
    series = load_study(args.input, max_archive_bytes=args.max_archive_mb * 1024**2).sagittal(Weighting(args.weighting))
    spine = localiser(series)
    with staged_output(args.out) as stage:
        write_vertebrae_json(spine, stage / "vertebrae.json")
        write_overview(series, spine, stage / "overview.png")
    print(f"{series.description or series.source}: {', '.join(spine.levels)}; wrote {args.out / 'vertebrae.json'} "
          f"and {args.out / 'overview.png'}")
    return 0


def _cmd_evaluate_localiser(args: argparse.Namespace) -> int:
    from spinecore.localise import Localiser
    from spinecore.report import staged_output
    from spinecore.train.localiser_eval import evaluate_localiser

    localiser = Localiser(args.model)
    with staged_output(args.out) as stage:
        summary = evaluate_localiser(args.data, localiser, stage, midsag_cases_count=args.midsag)
    print(json.dumps(summary, indent=1))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from spinecore.bench import bench_localise

    print(json.dumps(bench_localise(args.model, n_slices=args.slices, repeats=args.repeats), indent=1))
    return 0


def _cmd_train_localiser(args: argparse.Namespace) -> int:
    import torch

    from spinecore.train.localiser import LocaliserTraining, train_localiser

    if not (args.data / "spider_space").is_dir() or not (args.data / "lumbar_vb").is_dir():
        raise SpineCoreError(args.data, "not the real-data pack (needs spider_space/ and lumbar_vb/)")
    torch.set_num_threads(2)  # fixed, so a seed reproduces the same weights
    settings = LocaliserTraining(seed=args.seed, steps=args.steps, phantoms=args.phantoms)
    command = " ".join(["spinecore", "train-localiser", "--data", str(args.data), "--out", str(args.out),
                        "--seed", str(args.seed), "--steps", str(args.steps), "--phantoms", str(args.phantoms)])
    partial = args.out.with_name(args.out.name + ".partial")
    try:
        train_localiser(args.data, partial, settings, command)
        partial.replace(args.out)
    finally:
        partial.unlink(missing_ok=True)
    print(f"wrote {args.out}")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spinecore", description="Lumbar spine MRI analysis (SpineNet).")
    parser.add_argument("--version", action="version", version=f"spinecore {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and skipped files")
    sub = parser.add_subparsers(dest="command", required=True)

    def add_input(p: argparse.ArgumentParser) -> None:
        p.add_argument("input", type=Path, help="DICOM folder, .zip of DICOM, DICOM file, or .nii/.nii.gz/.nrrd/.mha")
        p.add_argument("--max-archive-mb", type=_positive_int, default=MAX_ARCHIVE_BYTES // 1024**2,
                       help="cap on the uncompressed size read from a zip (default %(default)s MB)")

    info = sub.add_parser("info", help="list the series of a study: plane, weighting, shape, spacing, origin")
    add_input(info)
    info.add_argument("--json", action="store_true", help="print JSON (with the full affine) instead of text")
    info.set_defaults(run=_cmd_info)

    convert = sub.add_parser("convert", help="write the sagittal series (or all) as canonical NIfTI + series.json")
    add_input(convert)
    convert.add_argument("--out", type=Path, required=True, help="output folder")
    convert.add_argument("--all", action="store_true", help="convert every series, not only the sagittal one")
    convert.set_defaults(run=_cmd_convert)

    phantom = sub.add_parser("phantom", help="write a synthetic lumbar study (DICOM + NIfTI + ground truth)")
    phantom.add_argument("--out", type=Path, required=True, help="output folder")
    phantom.add_argument("--seed", type=int, default=0, help="patient and scan seed (default %(default)s)")
    phantom.add_argument("--follow-up", type=float, nargs="?", const=10.0, metavar="YEARS",
                         help="the same patient YEARS later (default 10 when given without a value)")
    phantom.add_argument("--top-level", choices=("T11", "T12", "L1", "L2"), help="most cranial vertebra in view")
    phantom.add_argument("--slices", type=_positive_int, help="number of sagittal slices")
    phantom.set_defaults(run=_cmd_phantom)

    localise = sub.add_parser("localise", help="find, label and outline the vertebrae: vertebrae.json + overview.png")
    add_input(localise)
    localise.add_argument("--out", type=Path, required=True, help="output folder")
    localise.add_argument("--model", type=Path, help="localiser model file (default: the bundled one)")
    localise.add_argument("--weighting", choices=("T2", "T1", "STIR"), default="T2",
                          help="preferred sagittal series when the study has several (default %(default)s)")
    localise.set_defaults(run=_cmd_localise)

    evaluate = sub.add_parser("evaluate-localiser", help="localiser metrics on our validation split + contact sheets")
    evaluate.add_argument("--data", type=Path, required=True, help="the real-data pack")
    evaluate.add_argument("--model", type=Path, help="localiser model file (default: the bundled one)")
    evaluate.add_argument("--out", type=Path, required=True, help="folder for metrics.json and contact sheets")
    evaluate.add_argument("--midsag", type=int, default=40, help="mid-sagittal SPIDER cases on the contact sheet")
    evaluate.set_defaults(run=_cmd_evaluate_localiser)

    bench = sub.add_parser("bench", help="time localisation of a phantom study (median of repeats)")
    bench.add_argument("--model", type=Path, help="localiser model file (default: the bundled one)")
    bench.add_argument("--slices", type=_positive_int, default=15, help="sagittal slices (default %(default)s)")
    bench.add_argument("--repeats", type=_positive_int, default=5, help="timed runs (default %(default)s)")
    bench.set_defaults(run=_cmd_bench)

    train = sub.add_parser("train-localiser", help="train the vertebra localiser on the real-data pack + phantoms")
    train.add_argument("--data", type=Path, required=True, help="the real-data pack (spider_space/, lumbar_vb/)")
    train.add_argument("--out", type=Path, required=True, help="model file to write (.pt)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    train.add_argument("--steps", type=_positive_int, default=6000, help="optimiser steps (default %(default)s)")
    train.add_argument("--phantoms", type=int, default=30, help="phantom patients added (default %(default)s)")
    train.set_defaults(run=_cmd_train_localiser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="spinecore: %(message)s")
    try:
        return args.run(args)
    except SpineCoreError as exc:
        print(f"spinecore: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print("spinecore: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # unreadable/unwritable paths, disk full...
        print(f"spinecore: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except Exception as exc:  # a bug, not the user's input: still one line unless -v asks for details
        if args.verbose:
            raise
        print(f"spinecore: internal error: {type(exc).__name__}: {brief(exc)} (rerun with -v for details and "
              "please report it)", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
