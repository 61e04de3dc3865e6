"""Data commands: ``phantom``, ``phantom-manifest``, ``phantom-patients``, ``spider-manifests``,
``sudirman-manifests``."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from spinecore.cli.common import Commands, data_pack, option, out, positive_int, seed, streams_list

if TYPE_CHECKING:
    from spinecore.data.manifests import ManifestRow
    from spinecore.grade.schemes import GradingScheme

COMMANDS = Commands()


def seed_range(text: str) -> range:
    """``N`` or ``FIRST:END`` → the seeds."""
    first, _, last = text.partition(":")
    try:
        return range(int(first), int(last)) if last else range(int(first), int(first) + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a seed or FIRST:END range: {text!r}") from None


@COMMANDS("phantom", "write a synthetic lumbar study (DICOM + NIfTI + ground truth)", out(),
          seed("patient and scan seed"),
          option("--follow-up", type=float, nargs="?", const=10.0, metavar="YEARS",
                 help="the same patient YEARS later (default 10 when given without a value)"),
          option("--top-level", choices=("T11", "T12", "L1", "L2"), help="most cranial vertebra in view"),
          option("--slices", type=positive_int, help="number of sagittal slices"))
def run_phantom(args: argparse.Namespace) -> int:
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


@COMMANDS("phantom-manifest", "write phantom T2 scans and a manifest of their true grades", out(),
          option("--seeds", type=seed_range, default="500:540", help="seed or FIRST:END range (default %(default)s)"),
          option("--scheme", default="genodisc", help="scheme name or JSON file (default %(default)s)"),
          option("--slices", type=positive_int, help="sagittal slices per scan (default: the phantom's)"),
          option("--independent-findings", action="store_true",
                 help="draw every finding independently of degeneration and of the others, so a grader can "
                      "learn each only from its own evidence (for evaluate-hotspots)"),
          option("--streams", type=streams_list, default=("t2",),
                 help="series per phantom, comma-separated: t2 then any of t1, axial (default t2; written as the "
                      "manifest's scan_t1/scan_axial columns)"))
def run_phantom_manifest(args: argparse.Namespace) -> int:
    from spinecore.data.manifests import write_phantom_manifest
    from spinecore.grade import get_scheme
    from spinecore.report import staged_output

    with staged_output(args.out) as stage:
        write_phantom_manifest(stage, args.seeds, get_scheme(args.scheme), args.independent_findings, args.slices,
                               args.streams)
    print(f"wrote {len(args.seeds)} phantom scans and {args.out / 'manifest.csv'}")
    return 0


@COMMANDS("phantom-patients", "write phantom T2 scans and a patient-score manifest of a synthetic score driven "
          "by their true Pfirrmann grades (for the patient-level head)", out(),
          option("--seeds", type=seed_range, default="600:640", help="seed or FIRST:END range (default %(default)s)"),
          option("--slices", type=positive_int, help="sagittal slices per scan (default: the phantom's)"))
def run_phantom_patients(args: argparse.Namespace) -> int:
    from spinecore.data.patients import write_phantom_patients
    from spinecore.report import staged_output

    with staged_output(args.out) as stage:
        write_phantom_patients(stage, args.seeds, args.slices)
    print(f"wrote {len(args.seeds)} phantom scans and {args.out / 'patients.csv'}")
    return 0


@COMMANDS("spider-manifests", "write train/validation manifests of the SPIDER gradings", data_pack(),
          out("folder for spider_train.csv, spider_validation.csv and, for the T1 + T2 check, "
              "spider_validation_pairs.csv (validation T2 rows with their T1), spider_validation_pairs_t2_only.csv"),
          option("--scheme", default="spider", help="scheme name or JSON file (default %(default)s)"))
def run_spider_manifests(args: argparse.Namespace) -> int:
    from spinecore.data.spider import spider_manifests, validation_pairs
    from spinecore.grade import get_scheme

    scheme = get_scheme(args.scheme)
    parts = spider_manifests(args.data, scheme)
    _write_manifests(args.out, "spider", scheme, parts | validation_pairs(parts["validation"]))
    return 0


@COMMANDS("sudirman-manifests", "write train/validation manifests of the Sudirman Pfirrmann grades", data_pack(),
          out("folder for sudirman_train.csv, sudirman_validation.csv (and both_*.csv)"),
          option("--scheme", default="spider", help="scheme name or JSON file with a pfirrmann task "
                                                     "(default %(default)s)"),
          option("--with-spider", action="store_true",
                 help="also write both_train.csv, both_validation.csv: the SPIDER and Sudirman rows together"))
def run_sudirman_manifests(args: argparse.Namespace) -> int:
    from spinecore.data.spider import spider_manifests
    from spinecore.data.sudirman import sudirman_manifests
    from spinecore.grade import get_scheme

    scheme = get_scheme(args.scheme)
    manifests = {"sudirman": sudirman_manifests(args.data, scheme)}
    if args.with_spider:  # read before anything is written: a pack without SPIDER leaves no output
        manifests["both"] = {part: rows + manifests["sudirman"][part]
                             for part, rows in spider_manifests(args.data, scheme).items()}
    for name, parts in manifests.items():
        _write_manifests(args.out, name, scheme, parts)
    return 0


def _write_manifests(folder: Path, name: str, scheme: GradingScheme, parts: dict[str, list[ManifestRow]]) -> None:
    """``<folder>/<name>_<part>.csv`` for each part's manifest rows, with a one-line summary each."""
    from spinecore.data.manifests import write_manifest

    folder.mkdir(parents=True, exist_ok=True)
    for part, rows in parts.items():
        path = folder / f"{name}_{part}.csv"
        write_manifest(path, scheme, rows)
        print(f"{path}: {len(rows)} discs of {len({r.scan for r in rows})} scans, "
              f"{len({r.patient for r in rows})} patients")
