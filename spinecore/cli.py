"""Command line: ``spinecore info | convert | phantom | localise | grade | bench | train | evaluate | …``.

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

SALIENCY_METHODS = ("guided", "excitation", "backprop")  # spinecore.saliency.Method, without importing torch

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


def _saliency_method(name: str | None):
    """The ``--method`` choice, or the library's default when none was given."""
    from spinecore.saliency import DEFAULT_METHOD, Method

    return Method(name) if name else DEFAULT_METHOD


def _cmd_grade(args: argparse.Namespace) -> int:
    from spinecore.grade import Grader
    from spinecore.io.series import Weighting
    from spinecore.localise import Localiser
    from spinecore.pipeline import analyse
    from spinecore.report import (staged_output, write_grading_overview, write_gradings_csv, write_gradings_json,
                                  write_hotspots, write_vertebrae_json)

    localiser, grader = Localiser(args.localiser), Grader.load(args.model)
    method = _saliency_method(args.method)
    series = load_study(args.input, max_archive_bytes=args.max_archive_mb * 1024**2).sagittal(Weighting(args.weighting))
    result = analyse(series, localiser, grader, tta=not args.no_tta,
                     hotspot_tasks=grader.scheme.task_names if args.hotspots else (), method=method,
                     augmentations=args.augmentations)
    with staged_output(args.out) as stage:
        write_gradings_csv(result.gradings, stage / "gradings.csv")
        write_gradings_json(result.gradings, result.spine, stage / "gradings.json")
        write_vertebrae_json(result.spine, stage / "vertebrae.json")
        write_grading_overview(series, result.spine, result.gradings, stage / "overview.png")
        if result.hotspots:
            write_hotspots(series, list(result.volumes), result.hotspots, stage / "hotspots", method.value)
    levels = ", ".join(d.level for d in result.gradings.discs) or "none"
    print(f"{series.description or series.source}: graded discs {levels}; wrote gradings.csv, gradings.json, "
          f"vertebrae.json, overview.png{' and hotspots/' if result.hotspots else ''} to {args.out}")
    return 0


def _cmd_spider_manifests(args: argparse.Namespace) -> int:
    from spinecore.grade import get_scheme
    from spinecore.train.grading_data import spider_manifests, write_manifest

    if not (args.data / "spider_midsag" / "gradings.csv").is_file():
        raise SpineCoreError(args.data, "not the real-data pack (needs spider_midsag/gradings.csv)")
    scheme = get_scheme(args.scheme)
    args.out.mkdir(parents=True, exist_ok=True)
    for part, rows in spider_manifests(args.data, scheme).items():
        path = args.out / f"spider_{part}.csv"
        write_manifest(path, scheme, rows)
        print(f"{path}: {len(rows)} discs of {len({r.scan for r in rows})} scans, {len({r.patient for r in rows})} patients")
    return 0


def _cmd_phantom_manifest(args: argparse.Namespace) -> int:
    from spinecore.grade import get_scheme
    from spinecore.report import staged_output
    from spinecore.train.grading_data import write_phantom_manifest

    first, _, last = args.seeds.partition(":")
    seeds = range(int(first), int(last)) if last else [int(first)]
    with staged_output(args.out) as stage:
        write_phantom_manifest(stage, seeds, get_scheme(args.scheme), args.independent_findings)
    print(f"wrote {len(seeds)} phantom scans and {args.out / 'manifest.csv'}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import torch

    from spinecore.grade import get_scheme
    from spinecore.models import save_model
    from spinecore.train.grading import GradingTraining, network_config, train_grading_model
    from spinecore.train.grading_data import build_disc_set, read_manifest

    scheme = get_scheme(args.scheme)
    rows = read_manifest(args.manifest, scheme)
    validation_rows = read_manifest(args.validation, scheme) if args.validation else None
    torch.set_num_threads(2)  # fixed, so a seed reproduces the same weights
    settings = GradingTraining(seed=args.seed, steps=args.steps, preset=args.preset, dims=args.dims, branch=args.branch)
    network_config(scheme, settings)  # fail on a bad branch before the long part
    command = " ".join(["spinecore", "train", "--manifest", str(args.manifest), "--scheme", str(args.scheme),
                        "--out", str(args.out), "--seed", str(args.seed), "--steps", str(args.steps),
                        "--preset", args.preset, "--dims", str(args.dims)]
                       + (["--branch", args.branch] if args.branch else [])
                       + (["--validation", str(args.validation)] if args.validation else []))
    train, skipped = build_disc_set(rows)
    calibration = build_disc_set(validation_rows)[0] if validation_rows else None
    net, metadata = train_grading_model(train, scheme, settings, command, calibration,
                                        data_note=f"{args.manifest.name}: {len(train)} discs ({len(skipped)} graded discs "
                                                  "not found by the localiser)")
    partial = args.out.with_name(args.out.name + ".partial")
    try:
        save_model(partial, "grader", {"net": net.config.to_dict(), "scheme": scheme.to_dict()}, net.state_dict(),
                   metadata)
        partial.replace(args.out)
    finally:
        partial.unlink(missing_ok=True)
    print(f"wrote {args.out} ({len(train)} training discs, {len(skipped)} skipped)")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from spinecore.grade import Grader
    from spinecore.report import staged_output
    from spinecore.report.evaluation import write_evaluation
    from spinecore.train.grading_data import build_disc_set, read_manifest
    from spinecore.train.grading_eval import evaluate_grader

    grader = Grader.load(args.model)
    data, skipped = build_disc_set(read_manifest(args.manifest, grader.scheme))
    metrics = evaluate_grader(grader, data, tta=not args.no_tta, seed=args.seed)
    metrics["skipped"] = skipped
    with staged_output(args.out) as stage:
        write_evaluation(metrics, stage)
    print((args.out / "metrics.md").read_text())
    return 0


def _cmd_evaluate_hotspots(args: argparse.Namespace) -> int:
    from spinecore.grade import Grader
    from spinecore.report import staged_output
    from spinecore.models import models_dir
    from spinecore.train.hotspot_eval import (PHANTOM_GRADER, evaluate_lesion_hotspots, hotspot_table, lesion_cases,
                                              real_disc_sheet)

    grader = Grader.load(args.model or models_dir() / PHANTOM_GRADER)
    missing = {"endplate_upper", "marrow_lower", "stenosis", "herniation"} - set(grader.scheme.task_names)
    if missing:
        raise SpineCoreError(args.model, f"model lacks the lesion tasks {', '.join(sorted(missing))} "
                                         "(train one on `spinecore phantom-manifest` output with --scheme genodisc)")
    metrics = evaluate_lesion_hotspots(grader, lesion_cases(range(args.seed, args.seed + args.cases)), args.augmentations)
    with staged_output(args.out) as stage:
        (stage / "hotspot_metrics.json").write_text(json.dumps(metrics, indent=1))
        (stage / "hotspot_metrics.md").write_text(hotspot_table(metrics))
        if args.manifest:
            from spinecore.train.grading_data import build_disc_set, read_manifest

            real = Grader.load(args.real_model)
            data, _ = build_disc_set(read_manifest(args.manifest, real.scheme))
            sheet = real_disc_sheet(real, data, stage / "real_hotspots.png", args.sheet,
                                    _saliency_method(args.method),
                                    args.augmentations, args.prefer)
            (stage / "real_hotspots.json").write_text(json.dumps(sheet, indent=1))
    print((args.out / "hotspot_metrics.md").read_text())
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
    from spinecore.bench import bench_grade, bench_hotspots, bench_localise

    results = [bench_localise(args.model, n_slices=args.slices, repeats=args.repeats),
               bench_grade(args.grader, args.model, n_slices=args.slices, repeats=args.repeats),
               bench_hotspots(args.grader, args.model)]
    print(json.dumps(results, indent=1))
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

    grade = sub.add_parser("grade", help="localise and grade every disc: gradings.csv/.json, vertebrae.json, overview.png")
    add_input(grade)
    grade.add_argument("--out", type=Path, required=True, help="output folder")
    grade.add_argument("--model", type=Path, help="grading model file (default: the bundled one)")
    grade.add_argument("--localiser", type=Path, help="localiser model file (default: the bundled one)")
    grade.add_argument("--no-tta", action="store_true", help="one view per disc instead of the 54-view average")
    grade.add_argument("--weighting", choices=("T2", "T1", "STIR"), default="T2",
                       help="preferred sagittal series when the study has several (default %(default)s)")
    grade.add_argument("--hotspots", action="store_true",
                       help="also write evidence hotspots: hotspots/<level>_<task>.nii.gz (scan grid) and <level>.png")
    grade.add_argument("--method", choices=SALIENCY_METHODS, help="saliency method for --hotspots (default guided)")
    grade.add_argument("--augmentations", type=_positive_int, default=150,
                       help="augmented copies averaged per hotspot (default %(default)s; 1 = no augmentation)")
    grade.set_defaults(run=_cmd_grade)

    manifests = sub.add_parser("spider-manifests", help="write train/validation manifests of the SPIDER gradings")
    manifests.add_argument("--data", type=Path, required=True, help="the real-data pack")
    manifests.add_argument("--out", type=Path, required=True, help="folder for spider_train.csv, spider_validation.csv")
    manifests.add_argument("--scheme", default="spider", help="scheme name or JSON file (default %(default)s)")
    manifests.set_defaults(run=_cmd_spider_manifests)

    phantom_manifest = sub.add_parser("phantom-manifest", help="write phantom T2 scans and a manifest of their true grades")
    phantom_manifest.add_argument("--out", type=Path, required=True, help="output folder")
    phantom_manifest.add_argument("--seeds", default="500:540", help="seed or FIRST:END range (default %(default)s)")
    phantom_manifest.add_argument("--scheme", default="genodisc", help="scheme name or JSON file (default %(default)s)")
    phantom_manifest.add_argument("--independent-findings", action="store_true",
                                  help="draw every finding independently of degeneration and of the others, so a "
                                       "grader can learn each only from its own evidence (for evaluate-hotspots)")
    phantom_manifest.set_defaults(run=_cmd_phantom_manifest)

    train_grader = sub.add_parser("train", help="train a grading model from a manifest (see README: manifest format)")
    train_grader.add_argument("--manifest", type=Path, required=True, help="training manifest CSV")
    train_grader.add_argument("--scheme", default="spider", help="scheme name (spider, genodisc) or JSON file")
    train_grader.add_argument("--out", type=Path, required=True, help="model file to write (.pt)")
    train_grader.add_argument("--validation", type=Path, help="manifest whose discs calibrate the probabilities")
    train_grader.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    train_grader.add_argument("--steps", type=_positive_int, default=4000, help="optimiser steps (default %(default)s)")
    train_grader.add_argument("--preset", choices=("compact", "thesis"), default="compact",
                              help="network size (default %(default)s; thesis = 426 M parameters)")
    train_grader.add_argument("--dims", type=int, choices=(2, 3), default=2, help="2-D or 3-D kernels")
    train_grader.add_argument("--branch", choices=("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"),
                              help="last layer shared by all tasks (default: the preset's)")
    train_grader.set_defaults(run=_cmd_train)

    evaluate_grader = sub.add_parser("evaluate", help="per-task accuracy, kappa, intervals and baselines on a manifest")
    evaluate_grader.add_argument("--manifest", type=Path, required=True, help="manifest CSV with reference grades")
    evaluate_grader.add_argument("--model", type=Path, help="grading model file (default: the bundled one)")
    evaluate_grader.add_argument("--out", type=Path, required=True, help="folder for metrics.json and metrics.md")
    evaluate_grader.add_argument("--no-tta", action="store_true", help="evaluate without test-time augmentation")
    evaluate_grader.add_argument("--seed", type=int, default=0, help="bootstrap seed (default %(default)s)")
    evaluate_grader.set_defaults(run=_cmd_evaluate)

    hot = sub.add_parser("evaluate-hotspots", help="hotspot boxes against true phantom lesions; real-disc contact sheet")
    hot.add_argument("--model", type=Path, help="a genodisc grader trained on phantoms "
                                                "(default: the bundled Resources/Models/phantom_grader.pt)")
    hot.add_argument("--out", type=Path, required=True, help="folder for hotspot_metrics.json/.md (and the sheet)")
    hot.add_argument("--cases", type=_positive_int, default=5, help="phantoms per lesion type (default %(default)s)")
    hot.add_argument("--seed", type=int, default=900, help="first phantom seed (default %(default)s)")
    hot.add_argument("--augmentations", type=_positive_int, default=150, help="augmentations per hotspot")
    hot.add_argument("--manifest", type=Path, help="also draw real_hotspots.png from this manifest's graded discs")
    hot.add_argument("--real-model", type=Path, help="grader for the real discs (default: the bundled one)")
    hot.add_argument("--sheet", type=_positive_int, default=24, help="discs on the real contact sheet")
    hot.add_argument("--prefer", default="_t2.", help="scans whose path contains this come first on the sheet "
                                                      "(default %(default)r: the T2 mid-sagittal images)")
    hot.add_argument("--method", choices=SALIENCY_METHODS, help="saliency method of the real contact sheet (default guided)")
    hot.set_defaults(run=_cmd_evaluate_hotspots)

    evaluate = sub.add_parser("evaluate-localiser", help="localiser metrics on our validation split + contact sheets")
    evaluate.add_argument("--data", type=Path, required=True, help="the real-data pack")
    evaluate.add_argument("--model", type=Path, help="localiser model file (default: the bundled one)")
    evaluate.add_argument("--out", type=Path, required=True, help="folder for metrics.json and contact sheets")
    evaluate.add_argument("--midsag", type=int, default=40, help="mid-sagittal SPIDER cases on the contact sheet")
    evaluate.set_defaults(run=_cmd_evaluate_localiser)

    bench = sub.add_parser("bench", help="time localisation, grading and hotspots on a phantom study")
    bench.add_argument("--model", type=Path, help="localiser model file (default: the bundled one)")
    bench.add_argument("--grader", type=Path, help="grading model file (default: the bundled one)")
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
