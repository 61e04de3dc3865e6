"""What every command group shares: the command registry, the study input, and option builders.

A command is its handler, decorated with its name, help and options::

    @COMMANDS("localise", "find, label and outline the vertebrae", sagittal_study, model("localiser"))
    def run_localise(args) -> int: ...

Each option is a function that adds arguments to the command's parser.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from spinecore.io import Study, load_study
from spinecore.io.archive import MAX_ARCHIVE_BYTES
from spinecore.io.series import Series, Weighting
from spinecore.saliency.settings import ALL_TASKS, DEFAULT_AUGMENTATIONS, DEFAULT_METHOD, NO_TASKS, Method
from spinecore.streams import valid_streams

Handler = Callable[[argparse.Namespace], int]
Option = Callable[[argparse.ArgumentParser], None]
WEIGHTINGS = ("T2", "T1", "STIR")


@dataclass
class Commands:
    """The commands of one group, in the order they were declared."""

    declared: list[tuple[str, str, Handler, tuple[Option, ...]]] = field(default_factory=list)

    def __call__(self, name: str, help: str, *options: Option) -> Callable[[Handler], Handler]:
        def declare(run: Handler) -> Handler:
            self.declared.append((name, help, run, options))
            return run
        return declare

    def register(self, sub) -> None:
        """Add every declared command to the subparsers ``sub``."""
        for name, help, run, options in self.declared:
            parser = sub.add_parser(name, help=help)
            parser.set_defaults(run=run)
            for add in options:
                add(parser)


def _int_at_least(text: str, minimum: int) -> int:
    value = int(text)
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def non_negative_float(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < math.inf:
        raise argparse.ArgumentTypeError("must be a finite number of at least 0")
    return value


def share(text: str) -> float:
    """A share in [0, 1]."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def streams_list(text: str) -> tuple[str, ...]:
    """``--streams``: ``t2`` then any of ``t1``, ``axial``, comma-separated."""
    streams = tuple(s.strip() for s in text.split(",") if s.strip())
    if not valid_streams(streams):
        raise argparse.ArgumentTypeError(f"{text!r}: t2 first, then any of t1, axial (e.g. t2,t1)")
    return streams


def option(*flags: str, **settings) -> Option:
    """Any one argument, as :meth:`argparse.ArgumentParser.add_argument` takes it."""
    return lambda parser: parser.add_argument(*flags, **settings)


def any_study(parser: argparse.ArgumentParser) -> None:
    """The ``input`` study and its archive cap."""
    parser.add_argument("input", type=Path, help="DICOM folder, .zip of DICOM, DICOM file, or .nii/.nii.gz/.nrrd/.mha")
    parser.add_argument("--max-archive-mb", type=positive_int, default=MAX_ARCHIVE_BYTES // 1024**2,
                        help="cap on the uncompressed size read from a zip (default %(default)s MB)")


def out(what: str = "output folder") -> Option:
    return option("--out", type=Path, required=True, help=what)


def model(kind: str, flag: str = "--model") -> Option:
    """``flag``: a ``kind`` model file, the bundled one when not given."""
    return option(flag, type=Path, help=f"{kind} model file (default: the bundled one)")


def cache(what: str) -> Option:
    """``--cache DIR``: the extracted volumes kept and reused (:mod:`spinecore.data.cache`)."""
    return option("--cache", type=Path, metavar="DIR",
                  help=f"keep the extracted {what} in DIR and reuse them while the scans, the localiser and the "
                       "extraction code are unchanged")


def data_pack(what: str = "the real-data pack") -> Option:
    return option("--data", type=Path, required=True, help=what)


def seed(what: str = "random seed", default: int = 0) -> Option:
    return option("--seed", type=int, default=default, help=f"{what} (default %(default)s)")


def sagittal_study(parser: argparse.ArgumentParser) -> None:
    """A study in (:func:`any_study`), which sagittal series to prefer (:func:`read_sagittal`), and ``--out``."""
    any_study(parser)
    parser.add_argument("--weighting", choices=WEIGHTINGS, default="T2",
                        help="preferred sagittal series when the study has several (default %(default)s)")
    out()(parser)


def hotspot_options(method_help: str) -> Option:
    """``--method`` (saliency method) and ``--augmentations`` (copies averaged per hotspot)."""
    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--method", choices=[m.value for m in Method], default=DEFAULT_METHOD.value,
                            help=method_help)
        parser.add_argument("--augmentations", type=positive_int, default=DEFAULT_AUGMENTATIONS,
                            help="augmented copies averaged per hotspot (default %(default)s; 1 = no augmentation)")
    return add


def hotspots(parser: argparse.ArgumentParser) -> None:
    """``--hotspots [TASKS]`` (evidence hotspots of these tasks; alone: every task) and its
    :func:`hotspot_options`."""
    parser.add_argument("--hotspots", nargs="?", const=ALL_TASKS, default=NO_TASKS, metavar="TASKS",
                        help="also write evidence hotspots (hotspots/<level>_<task>.nii.gz in the scan grid, "
                             "<level>.png; a multi-stream model also <level>_<task>_t1.nii.gz in the T1's grid, "
                             f"_axial likewise) of TASKS: comma-separated task names, or {ALL_TASKS} (the default "
                             "when TASKS is left out)")
    hotspot_options("saliency method for --hotspots (default %(default)s)")(parser)


def read_study(args: argparse.Namespace) -> Study:
    return load_study(args.input, max_archive_bytes=args.max_archive_mb * 1024**2)


def read_sagittal(args: argparse.Namespace) -> Series:
    """The study's sagittal series of the ``--weighting`` asked for (or the nearest one)."""
    return read_study(args).sagittal(Weighting(args.weighting))
