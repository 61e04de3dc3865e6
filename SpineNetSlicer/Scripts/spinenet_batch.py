"""Grade every study under a file or folder and save the SpineNet results Slicer opens.

    Slicer --no-main-window --python-script spinenet_batch.py --input DIR_OR_FILE --output DIR
    python spinenet_batch.py --input DIR_OR_FILE --output DIR          # with pip install slicer-core

``--input`` is one study (a volume file, a DICOM zip, file or folder) or a folder of studies
(see ``spinecore.io.find_studies``). Each study gets ``DIR/<study>/`` with
``structures.seg.nrrd``, ``quadrilaterals/*.mrk.json``, ``heatmap_<task>.nrrd`` (and, for a
fused grader, ``heatmap_<task>_t1.nrrd`` / ``heatmap_<task>_axial<n>.nrrd`` over those scans), ``gradings.csv``,
``scene.mrb``, ``gradings.json``, ``vertebrae.json`` and ``overview.png``, or nothing if it fails.
A study's sagittal T1 and axial series (or, for a single study, ``--t1`` / ``--axial``) go to the
grader with its sagittal scan, as in ``spinecore grade`` (by default the bundled T1 + T2 grader when
there is a T1); a grader that does not read them says so.
A study that cannot be read is reported in one line and skipped; the exit code is then 1. The
first line printed names the spinecore that grades (version and folder).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "SpineNet"))

import slicer  # noqa: E402  (Slicer's own, or slicer-core's)

import spinecore  # noqa: E402
from spinecore.errors import SpineCoreError  # noqa: E402
from spinecore.io import Weighting, companion_series, find_studies, load_study  # noqa: E402
from spinecore.io.series import Series  # noqa: E402
from spinecore.io.volume import volume_stem  # noqa: E402
from spinecore.report import staged_output  # noqa: E402
from spinecore.saliency import DEFAULT_AUGMENTATIONS, DEFAULT_METHOD, Method  # noqa: E402
from spinecore.saliency.settings import ALL_TASKS, hotspot_tasks  # noqa: E402

from SpineNetLib.bridge import add_volume_node  # noqa: E402
from SpineNetLib.logic import SpineNetRunner  # noqa: E402
from SpineNetLib.parameters import SpineNetParameters  # noqa: E402
from SpineNetLib.saving import save_outputs  # noqa: E402

IN_SLICER = hasattr(slicer, "app")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="spinenet_batch.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, required=True, help="a study, or a folder of studies")
    parser.add_argument("--output", type=Path, required=True, help="results folder (one subfolder per study)")
    parser.add_argument("--model", default="", help="grader model file (default: the bundled T2 grader, or "
                        "the bundled T1 + T2 grader for a study with a sagittal T1)")
    parser.add_argument("--localiser", default="", help="localiser model file (default: the bundled one)")
    parser.add_argument("--weighting", choices=[w.value for w in Weighting], default="T2",
                        help="preferred sagittal weighting (default T2; any sagittal series if absent)")
    parser.add_argument("--no-tta", action="store_true", help="grade without test-time augmentation")
    parser.add_argument("--hotspots", default=ALL_TASKS,
                        help="comma-separated tasks to make heatmaps for, 'all' (default) or 'none'")
    parser.add_argument("--method", choices=[m.value for m in Method], default=DEFAULT_METHOD.value)
    parser.add_argument("--augmentations", type=int, default=DEFAULT_AUGMENTATIONS)
    parser.add_argument("--all-slices", action="store_true", help="a quadrilateral per slice, not just the mid slice")
    parser.add_argument("--t1", type=Path, help="a single study's sagittal T1 (file, DICOM folder or zip), for a model "
                                                "that reads T1 (default: the study's sagittal T1 series, if any)")
    parser.add_argument("--axial", type=Path, help="a single study's axial series (file, DICOM folder or zip), for a "
                                                   "model that reads axial (default: the study's axial series)")
    return parser.parse_args(argv)


def study_name(path: Path, taken: set[str]) -> str:
    name = volume_stem(path) if path.is_file() else path.name
    unique, n = name, 2
    while unique in taken:
        unique, n = f"{name}_{n}", n + 1
    taken.add(unique)
    return unique


def new_study_scene():
    if IN_SLICER:
        slicer.mrmlScene.Clear(0)
        return slicer.mrmlScene
    from SpineNetLib.headless import new_scene

    return new_scene()


def series_node(scene, series: Series, name: str):
    """``series`` as a volume node named after its description, else ``name``."""
    return add_volume_node(scene, series.description or name, series.array, series.geometry)


def grade_study(runner: SpineNetRunner, path: Path, out: Path, args, parameters: SpineNetParameters) -> str:
    """Grade one study with its other streams into ``out``; the summary line of the run."""
    study = load_study(path)
    sagittal = study.sagittal(Weighting(args.weighting))
    t1, axials = companion_series(study, sagittal, args.t1, args.axial)
    scene = new_study_scene()
    try:
        node = series_node(scene, sagittal, path.name)
        t1_node = None if t1 is None else series_node(scene, t1, f"{path.name} T1")
        axial_nodes = [series_node(scene, axial, f"{path.name} axial {n}") for n, axial in enumerate(axials, 1)]
        analysis, outputs = runner.run(node, parameters, t1_node=t1_node, axial_nodes=axial_nodes,
                                       t1_optional=args.t1 is None)
        with staged_output(out) as stage:
            save_outputs(scene, outputs, analysis, stage)
        return runner.summary(analysis)
    finally:
        if not IN_SLICER:
            from SpineNetLib.headless import release

            release(scene)


def main(argv: list[str]) -> int:
    args = parse(argv)
    print(f"spinecore {spinecore.__version__} ({Path(spinecore.__file__).parent})")
    try:
        studies = find_studies(args.input)
        if (args.t1 or args.axial) and len(studies) > 1:
            raise ValueError(f"{args.input}: --t1 and --axial go with a single study, not a folder of {len(studies)}")
        runner = SpineNetRunner()
        known = runner.grader(args.model).scheme.task_names
        runner.localiser(args.localiser)
        tasks = hotspot_tasks(args.hotspots, known)
        parameters = SpineNetParameters(args.model, args.localiser, not args.no_tta, tasks, args.method,
                                        args.augmentations, args.all_slices)
    except (SpineCoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    failed, taken = 0, set()
    for n, path in enumerate(studies, start=1):
        out = args.output / study_name(path, taken)
        try:
            summary = grade_study(runner, path, out, args, parameters)
            print(f"[{n}/{len(studies)}] {path}: {summary}; wrote {out}")
        except (SpineCoreError, OSError) as exc:
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
    print(f"{len(studies) - failed} of {len(studies)} studies graded into {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    if IN_SLICER:
        slicer.util.exit(code)
    sys.exit(code)
