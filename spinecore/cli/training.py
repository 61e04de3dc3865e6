"""Training and evaluation commands: ``train``, ``train-localiser``, ``evaluate``,
``evaluate-localiser``, ``evaluate-hotspots``, ``train-patient-head``, ``evaluate-patient-head``,
``train-raw-volume``, ``evaluate-raw-volume``."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from spinecore.cli.common import (Commands, cache, data_pack, hotspot_options, model, non_negative_float,
                                  non_negative_int, option, out, positive_int, seed, streams_list)
from spinecore.errors import SpineCoreError
from spinecore.streams import FUSIONS

COMMANDS = Commands()
MANIFEST_HELP = "manifest CSV (see README: manifest format)"


@COMMANDS("train", "train a grading model from a manifest (see README: manifest format)",
          option("--manifest", type=Path, required=True, help=MANIFEST_HELP),
          option("--scheme", default="spider", help="scheme name (spider, genodisc) or JSON file"),
          out("model file to write (.pt)"),
          option("--validation", type=Path, help="manifest whose discs calibrate the probabilities"), seed(),
          option("--steps", type=positive_int, default=4000, help="optimiser steps (default %(default)s)"),
          option("--preset", choices=("compact", "wide", "thesis"), default="compact",
                 help="network size (default %(default)s, 0.5 M parameters; wide = 2 M; thesis = 426 M)"),
          option("--dims", type=int, choices=(2, 3), default=2, help="2-D or 3-D kernels"),
          option("--branch", choices=("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"),
                 help="last layer shared by all tasks (default: the preset's; fc6 for a multi-stream model)"),
          option("--streams", type=streams_list, default=("t2",),
                 help="inputs, comma-separated: t2 then any of t1, axial (default t2; t1/axial are read from the "
                      "manifest's scan_t1/scan_axial columns)"),
          option("--fusion", choices=FUSIONS, help="how a multi-stream model fuses its streams (needed with --streams)"),
          option("--init", type=Path, metavar="PRETRAINED_PT",
                 help="start Conv1-Conv5 from this Siamese model (spinecore pretrain; thesis 7.4.2)"),
          option("--freeze-conv", action="store_true", help="with --init: keep those convolutions fixed"),
          option("--ordinal-targets", action="store_true",
                 help="soft ordinal targets for the scheme's ordered grades, e.g. Pfirrmann (SORD)"),
          cache("disc volumes of both manifests"))
def run_train(args: argparse.Namespace) -> int:
    from spinecore.data.manifests import build_disc_set, read_manifest
    from spinecore.grade import get_scheme
    from spinecore.models import save_model
    from spinecore.train.grading import GradingTraining, network_config, train_grading_model
    from spinecore.train.transfer import pretrained

    if (args.fusion is None) != (args.streams == ("t2",)):
        raise SpineCoreError(None, "--fusion goes with --streams of more than t2 (e.g. --streams t2,t1 --fusion fc8-sum)")
    if args.freeze_conv and args.init is None:
        raise SpineCoreError(None, "--freeze-conv goes with --init PRETRAINED_PT")
    scheme = get_scheme(args.scheme)
    rows = read_manifest(args.manifest, scheme)
    validation_rows = read_manifest(args.validation, scheme) if args.validation else None
    settings = GradingTraining(seed=args.seed, steps=args.steps, preset=args.preset, dims=args.dims, branch=args.branch,
                               streams=args.streams, fusion=args.fusion, init=str(args.init) if args.init else None,
                               freeze_conv=args.freeze_conv, ordinal_targets=args.ordinal_targets)
    config = network_config(scheme, settings)  # fail on a bad branch, streams or --init before the long part
    if args.init:
        pretrained(args.init, config)
    train, missed = build_disc_set(rows, cache=args.cache)
    calibration = build_disc_set(validation_rows, cache=args.cache)[0] if validation_rows else None
    trained = train_grading_model(train, scheme, settings, args.command_line, calibration,
                                  data_note=f"{args.manifest.name}: {len(train)} discs ({len(missed)} graded discs "
                                            "not found by the localiser)")
    save_model(args.out, trained)
    print(f"wrote {args.out} ({len(train)} training discs, {len(missed)} graded discs not found)")
    return 0


@COMMANDS("train-localiser", "train the vertebra localiser on the real-data pack + phantoms",
          data_pack("the real-data pack (spider_space/, lumbar_vb/)"), out("model file to write (.pt)"), seed(),
          option("--steps", type=positive_int, default=6000, help="optimiser steps (default %(default)s)"),
          option("--phantoms", type=non_negative_int, default=30, help="phantom patients added (default %(default)s)"),
          option("--narrowed-phantoms", type=non_negative_int, default=0,
                 help="further phantom patients with every disc randomly narrowed (default %(default)s)"),
          option("--learning-rate", type=float, default=2e-3, help="peak learning rate (default %(default)s)"),
          option("--edge-weight", type=non_negative_float, default=0.0,
                 help="extra cross-entropy weight on voxels at a label edge (default %(default)s)"),
          option("--init", type=Path, help="localiser model file whose weights start the run (fine-tuning)"),
          option("--pseudo-share", type=float, default=0.0,
                 help="share of crops from the --init model's pseudo-labelled mid-sagittal images of our "
                      "training patients (SPIDER, Sudirman; default %(default)s)"))
def run_train_localiser(args: argparse.Namespace) -> int:
    from spinecore.models import save_model
    from spinecore.train.localisation import LocaliserTraining, train_localiser

    if not 0.0 <= args.pseudo_share < 1.0 or (args.pseudo_share and args.init is None):
        raise SpineCoreError("--pseudo-share", "must be in [0, 1) and needs --init (the model that labels)")
    settings = LocaliserTraining(seed=args.seed, steps=args.steps, phantoms=args.phantoms,
                                 narrowed_phantoms=args.narrowed_phantoms, edge_weight=args.edge_weight,
                                 learning_rate=args.learning_rate, init=str(args.init) if args.init else None,
                                 pseudo_share=args.pseudo_share)
    save_model(args.out, train_localiser(args.data, settings, args.command_line))
    print(f"wrote {args.out}")
    return 0


@COMMANDS("evaluate", "per-task accuracy, kappa, intervals and baselines on a manifest",
          option("--manifest", type=Path, required=True, help=MANIFEST_HELP + " with reference grades"),
          option("--model", type=Path, action="append",
                 help="grading model file (default: the bundled one); give it again to compare models on the "
                      "same discs (comparison.md: paired differences from the first)"),
          out("folder for metrics.json and metrics.md (several models: comparison.json/.md and one folder each)"),
          option("--no-tta", action="store_true", help="evaluate without test-time augmentation"),
          option("--ensemble", action="store_true",
                 help="with several --model: also score their mean logits per task as one model, 'ensemble'"),
          option("--harmonise-to", type=Path, metavar="MANIFEST",
                 help="first map the discs' intensities per sequence onto those of this manifest's discs (histogram "
                      "standardisation, e.g. onto the model's training site; labels unused)"),
          seed("bootstrap seed"), cache("disc volumes"))
def run_evaluate(args: argparse.Namespace) -> int:
    from spinecore.data.harmonise import harmonised, landmarks
    from spinecore.data.manifests import build_disc_set, read_manifest
    from spinecore.evaluate.grading import check_one_scheme, compare_graders, evaluate_grader
    from spinecore.grade import Grader
    from spinecore.report import staged_output
    from spinecore.report.evaluation import write_comparison, write_evaluation

    paths = args.model or [None]
    if args.ensemble and len(paths) < 2:
        raise SpineCoreError(None, "--ensemble needs at least two --model files")
    graders = {f"{n}-{path.stem}" if path else "bundled": Grader.load(path) for n, path in enumerate(paths, start=1)}
    check_one_scheme(graders)
    first = next(iter(graders.values()))
    harmonise_to = read_manifest(args.harmonise_to, first.scheme) if args.harmonise_to else None
    data, missed = build_disc_set(read_manifest(args.manifest, first.scheme), cache=args.cache)
    extra = {}
    if harmonise_to:
        data, record = harmonised(data, landmarks(build_disc_set(harmonise_to, cache=args.cache)[0]))
        extra["harmonisation"] = {"onto": str(args.harmonise_to), "landmarks": record}
    with staged_output(args.out) as stage:
        if len(graders) == 1:
            results = evaluate_grader(first, data, tta=not args.no_tta, seed=args.seed, missed=missed)
            write_evaluation({**results, **extra}, stage)
        else:
            write_comparison({**compare_graders(graders, data, tta=not args.no_tta, seed=args.seed, missed=missed,
                                                ensemble=args.ensemble), **extra}, stage)
    print((args.out / ("metrics.md" if len(graders) == 1 else "comparison.md")).read_text())
    return 0


@COMMANDS("evaluate-localiser", "localiser metrics on our validation split + contact sheets", data_pack(),
          model("localiser"), out("folder for metrics.json and contact sheets"),
          option("--midsag", type=non_negative_int, default=40,
                 help="mid-sagittal SPIDER cases on the contact sheet (default %(default)s; 0: no sheet)"))
def run_evaluate_localiser(args: argparse.Namespace) -> int:
    from spinecore.evaluate.localisation import evaluate_localiser
    from spinecore.localise import Localiser
    from spinecore.report import staged_output
    from spinecore.report.evaluation import write_localiser_evaluation

    evaluation = evaluate_localiser(args.data, Localiser.load(args.model), midsag_cases_count=args.midsag)
    with staged_output(args.out) as stage:
        write_localiser_evaluation(evaluation, stage)
    print(json.dumps({k: v for k, v in evaluation.summary.items() if k != "midsag"}, indent=1))
    return 0


@COMMANDS("evaluate-hotspots", "hotspot boxes against true phantom lesions; real-disc contact sheet",
          option("--model", type=Path, help="a genodisc grader trained on phantoms "
                                            "(default: the bundled Resources/Models/phantom_grader.pt)"),
          out("folder for hotspot_metrics.json/.md (and the sheet)"),
          option("--cases", type=positive_int, default=5, help="phantoms per lesion type (default %(default)s)"),
          seed("first phantom seed", default=900),
          hotspot_options("saliency method of the real contact sheet (default %(default)s)"),
          option("--manifest", type=Path, help="also draw real_hotspots.png from this manifest's graded discs"),
          model("grading", "--real-model"),
          option("--sheet", type=positive_int, default=24, help="discs on the real contact sheet"),
          option("--prefer", default="_t2.", help="scans whose path contains this come first on the sheet "
                                                  "(default %(default)r: the T2 mid-sagittal images)"))
def run_evaluate_hotspots(args: argparse.Namespace) -> int:
    from spinecore.evaluate.hotspots import (
        evaluate_lesion_hotspots,
        lesion_cases,
        load_lesion_grader,
        real_disc_hotspots,
    )
    from spinecore.report import staged_output
    from spinecore.report.evaluation import write_hotspot_evaluation, write_real_hotspot_sheet
    from spinecore.saliency import Method

    grader = load_lesion_grader(args.model)
    metrics = evaluate_lesion_hotspots(grader, lesion_cases(range(args.seed, args.seed + args.cases)), args.augmentations)
    sheet = None
    if args.manifest:
        from spinecore.data.manifests import build_disc_set, read_manifest
        from spinecore.grade import Grader

        real = Grader.load(args.real_model)
        data, _ = build_disc_set(read_manifest(args.manifest, real.scheme))
        sheet = real_disc_hotspots(real, data, args.sheet, Method(args.method), args.augmentations, args.prefer)
    with staged_output(args.out) as stage:
        write_hotspot_evaluation(metrics, stage)
        if sheet is not None:
            write_real_hotspot_sheet(sheet, stage, Method(args.method))
    print((args.out / "hotspot_metrics.md").read_text())
    return 0


PATIENT_MANIFEST_HELP = "patient-score manifest CSV: patient, scan, then one column per score (see README)"


def _patient_set(manifest: Path, net, localiser_path: Path | None):
    """The score names and patient set of a patient-score manifest, on the grader ``net``'s features."""
    from spinecore.data.patients import build_patient_set, read_patient_manifest
    from spinecore.localise import Localiser

    names, rows = read_patient_manifest(manifest)
    return names, build_patient_set(rows, net, Localiser.load(localiser_path))


@COMMANDS("train-patient-head", "train the patient-level head (thesis 8.2.1) on the lumbar discs' features of a "
          "grader, from a manifest of patient scores",
          option("--manifest", type=Path, required=True, help=PATIENT_MANIFEST_HELP), out("model file to write (.pt)"),
          model("grading (its shared FC6 features are read)", "--grader"), model("localiser", "--localiser"), seed(),
          option("--steps", type=positive_int, default=200, help="optimiser steps (default %(default)s)"))
def run_train_patient_head(args: argparse.Namespace) -> int:
    from spinecore.grade.patient import feature_grader
    from spinecore.models import save_model
    from spinecore.train.patient import PatientHeadTraining, patient_head_model, train_patient_head

    net, grader = feature_grader(args.grader)
    names, data = _patient_set(args.manifest, net, args.localiser)
    settings = PatientHeadTraining(seed=args.seed, steps=args.steps)
    head = train_patient_head(data, names, settings)
    save_model(args.out, patient_head_model(head, data, settings, args.command_line, grader,
                                            f"{args.manifest.name}: {len(data)} patients"))
    print(f"wrote {args.out} ({len(data)} patients, scores {', '.join(names)})")
    return 0


@COMMANDS("evaluate-patient-head", "correlation of the patient-level head's predictions with the scores of a manifest",
          option("--manifest", type=Path, required=True, help=PATIENT_MANIFEST_HELP + " (patients not trained on)"),
          option("--model", type=Path, required=True, help="patient-head model file (spinecore train-patient-head)"),
          model("grading (the one the head was trained on)", "--grader"), model("localiser", "--localiser"),
          out("folder for patient_metrics.json/.md, patient_scores.csv/.png"))
def run_evaluate_patient_head(args: argparse.Namespace) -> int:
    from spinecore.evaluate.patient import evaluate_patient_head
    from spinecore.grade.patient import feature_grader, load_patient_head
    from spinecore.report import staged_output
    from spinecore.report.patient import write_patient_evaluation

    head, metadata = load_patient_head(args.model)
    net, grader = feature_grader(args.grader)
    if grader.get("model_id") != metadata.get("grader_model_id"):
        raise SpineCoreError(args.model, f"trained on the features of grader {metadata.get('grader_model_id')}, "
                                         f"not {grader.get('model_id')}: pass that grader with --grader")
    names, data = _patient_set(args.manifest, net, args.localiser)
    if names != head.config.scores:
        raise SpineCoreError(args.manifest, f"scores {', '.join(names)} are not the head's ({', '.join(head.config.scores)})")
    metrics = evaluate_patient_head(head, data)
    with staged_output(args.out) as stage:
        write_patient_evaluation(metrics, stage)
    print((args.out / "patient_metrics.md").read_text())
    return 0


@COMMANDS("train-raw-volume", "train the raw-volume baseline: every lumbar disc's grades from the whole sagittal "
          "scan, no localisation (thesis 6.3; see README: Raw-volume baseline)",
          option("--manifest", type=Path, required=True, help=MANIFEST_HELP),
          option("--scheme", default="spider", help="scheme name (spider, genodisc) or JSON file"),
          out("model file to write (.pt)"),
          option("--validation", type=Path, help="manifest whose scans calibrate the probabilities"), seed(),
          option("--steps", type=positive_int, default=4000, help="optimiser steps (default %(default)s)"),
          option("--init", type=Path, metavar="GRADER_PT",
                 help="start Conv1-Conv5 from this disc-volume grader model (the thesis' curriculum, 6.3.1; "
                      "e.g. Resources/Models/grader.pt); without it, from scratch"))
def run_train_raw_volume(args: argparse.Namespace) -> int:
    from spinecore.data.manifests import read_manifest
    from spinecore.data.scans import build_scan_set
    from spinecore.grade import get_scheme
    from spinecore.grade.raw_volume import raw_volume_config
    from spinecore.models import save_model
    from spinecore.train.raw_volume import RawVolumeTraining, grader_tower, train_raw_volume_model

    scheme = get_scheme(args.scheme)
    rows = read_manifest(args.manifest, scheme)
    validation_rows = read_manifest(args.validation, scheme) if args.validation else None
    if args.init:
        grader_tower(args.init, raw_volume_config(scheme))  # fail on a bad --init before the long part
    settings = RawVolumeTraining(seed=args.seed, steps=args.steps, init=str(args.init) if args.init else None)
    train = build_scan_set(rows)
    calibration = build_scan_set(validation_rows) if validation_rows else None
    trained = train_raw_volume_model(train, scheme, settings, args.command_line, calibration,
                                     data_note=f"{args.manifest.name}: {len(train)} scans")
    save_model(args.out, trained)
    print(f"wrote {args.out} ({len(train)} training scans of {len(set(train.patients))} patients)")
    return 0


@COMMANDS("evaluate-raw-volume", "the raw-volume baseline's metrics on a manifest, as `evaluate` reports a grader's",
          option("--manifest", type=Path, required=True, help=MANIFEST_HELP + " with reference grades"),
          option("--model", type=Path, required=True, help="raw-volume model file (spinecore train-raw-volume)"),
          out("folder for metrics.json and metrics.md"),
          option("--no-tta", action="store_true", help="evaluate without test-time augmentation"),
          seed("bootstrap seed"))
def run_evaluate_raw_volume(args: argparse.Namespace) -> int:
    from spinecore.data.manifests import read_manifest
    from spinecore.data.scans import build_scan_set
    from spinecore.evaluate.raw_volume import evaluate_raw_volume
    from spinecore.grade.raw_volume import load_raw_volume
    from spinecore.report import staged_output
    from spinecore.report.evaluation import write_evaluation

    grader, scheme = load_raw_volume(args.model)
    data = build_scan_set(read_manifest(args.manifest, scheme))
    metrics = evaluate_raw_volume(grader, scheme, data, tta=not args.no_tta, seed=args.seed)
    with staged_output(args.out) as stage:
        write_evaluation(metrics, stage)
    print((args.out / "metrics.md").read_text())
    return 0
