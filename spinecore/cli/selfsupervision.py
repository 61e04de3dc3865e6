"""Self-supervision and longitudinal commands: ``pretrain``, ``evaluate-pretrain``, ``label-efficiency``,
``compare``."""
from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from spinecore.cli.common import Commands, cache, model, non_negative_int, option, out, positive_int, seed, share

COMMANDS = Commands()
PAIR_CACHE = cache("bodies and discs (SPIDER, Sudirman and phantom patients)")
#: Phantom patients of each part: training seeds and held-out seeds never trained on.
PHANTOM_SEEDS = {"train": range(1000, 1040), "validation": range(2000, 2010)}
#: The random stream (beside the seed) that picks the training subjects held out for the threshold.
CALIBRATION_STREAM = 5


def _pack(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path,
                        help="the real-data pack (spider_midsag/, sudirman_midsag/ if there); without it, phantoms only")


def _phantoms(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--phantoms", type=int, default=len(PHANTOM_SEEDS["train"]),
                        help="phantom patients (baseline + follow-up each) added (default %(default)s)")


def _sets(args: argparse.Namespace, part: str):
    from spinecore.data.pretraining import pretraining_sets
    from spinecore.localise import Localiser

    seeds = list(PHANTOM_SEEDS[part])[: args.phantoms]
    return pretraining_sets(args.data, part, seeds, Localiser.load(args.localiser), args.cache)


@COMMANDS("pretrain", "train the Siamese network (same subject or not?) on pairs of vertebral bodies and discs",
          _pack, out("model file to write (.pt)"), seed(), _phantoms, model("localiser", "--localiser"), PAIR_CACHE,
          option("--steps", type=non_negative_int, default=2000,
                 help="optimiser steps of the whole tower (default %(default)s; 0 with --init: keep its "
                      "convolutions)"),
          option("--head-steps", type=non_negative_int, default=3000,
                 help="steps of the head stage after them: FC6-FC7 trained on the frozen convolutions' output "
                      "by an InfoNCE loss over 64 subjects of one level a step, bodies and discs in turn, then the "
                      "level heads fitted anew (default %(default)s; 0 with --steps 0 and --init: keep the whole "
                      "tower, make its reference scans and threshold anew)"),
          option("--init", type=Path, metavar="SIAMESE_PT", help="Siamese model file whose tower starts the run"),
          option("--calibration", type=share, default=0.15,
                 help="share of each source's training subjects held out of training to fit the same-subject "
                      "threshold on (default %(default)s)"),
          option("--contrast", type=share, default=0.0,
                 help="share of volumes given a random contrast curve, so pairs across sequences must be "
                      "matched by shape (default %(default)s)"))
def run_pretrain(args: argparse.Namespace) -> int:
    import numpy as np

    from spinecore.data.pairs import all_pairs, hold_out_subjects
    from spinecore.evaluate.pretrain import (best_threshold, body_vectors, embedded_levels, reference_scans,
                                             scan_identities)
    from spinecore.errors import SpineCoreError
    from spinecore.grade.siamese import Kind, load_siamese
    from spinecore.models import save_model
    from spinecore.train.siamese import SiameseTraining, siamese_model, train_siamese

    started_from = load_siamese(args.init)[1] if args.init is not None else None  # a bad --init fails now
    if started_from is None and not args.steps:
        raise SpineCoreError("--steps", "0 steps needs --init SIAMESE_PT (the tower to keep)")
    sets, calibration = hold_out_subjects(_sets(args, "train"), args.calibration,
                                          np.random.default_rng([args.seed, CALIBRATION_STREAM]))
    settings = SiameseTraining(seed=args.seed, steps=args.steps, contrast=args.contrast,
                               init=str(args.init) if args.init else None, head_steps=args.head_steps)
    net = train_siamese(sets, settings)
    net.references = reference_scans(net, sets[Kind.BODY])
    bodies = calibration[Kind.BODY]
    vectors = body_vectors(embedded_levels(net, bodies)[0], bodies)
    _, scores, one_subject = scan_identities(vectors, bodies, all_pairs(bodies), net.references)
    threshold = best_threshold(scores, one_subject)
    threshold_note = (f"Youden's J over the scan pairs of {len(set(bodies.subjects.tolist()))} training subjects "
                      f"held out of training ({args.calibration:.0%} of each source), each judged against the "
                      f"{net.references.shape[1]} training scans")
    note = (f"SPIDER training patients (mid-sagittal T1, T2, T2-SPACE) and Sudirman training patients (mid-sagittal "
            f"T1, T2; where the pack has them) from {args.data}" if args.data else "phantoms only")
    data_note = f"{note}; {args.phantoms} phantom patients (baseline + follow-up)"
    save_model(args.out, siamese_model(net, sets, settings, args.command_line, threshold, threshold_note, data_note,
                                       started_from))
    print(f"wrote {args.out} ({', '.join(f'{len(s)} {k.value} volumes' for k, s in sets.items())}; "
          f"same subject below score {threshold:.3f})")
    return 0


@COMMANDS("evaluate-pretrain", "subject identification by the Siamese network on validation pairs: AUC, histograms",
          _pack, model("Siamese"), model("localiser", "--localiser"), _phantoms, PAIR_CACHE,
          out("folder for pretrain_metrics.json/.md and pair_distances.png"))
def run_evaluate_pretrain(args: argparse.Namespace) -> int:
    from spinecore.data.pairs import SPIDER_SOURCE, SUDIRMAN_SOURCE
    from spinecore.data.pretraining import pretraining_sets
    from spinecore.evaluate.pretrain import subject_identification
    from spinecore.grade.siamese import load_siamese
    from spinecore.localise import Localiser
    from spinecore.report import staged_output
    from spinecore.report.pretrain import write_pretrain_evaluation

    net, metadata = load_siamese(args.model)
    localiser = Localiser.load(args.localiser)
    threshold = float(metadata["same_subject_below"])
    sets = pretraining_sets(None, "validation", list(PHANTOM_SEEDS["validation"])[: args.phantoms], localiser, args.cache)
    parts = {"phantom validation (baseline vs follow-up)": sets}
    if args.data:
        real = pretraining_sets(args.data, "validation", [], localiser, args.cache)
        for source, name in ((SPIDER_SOURCE, "SPIDER validation patients (T1 / T2 / T2-SPACE)"),
                             (SUDIRMAN_SOURCE, "Sudirman validation patients (T1 / T2)")):
            parts[name] = {kind: data.subset(data.sources() == source) for kind, data in real.items()}
    results = {name: {kind.value: subject_identification(net, data, threshold) for kind, data in sets.items() if len(data)}
               for name, sets in parts.items()}
    results = {name: result for name, result in results.items() if result}
    with staged_output(args.out) as stage:
        write_pretrain_evaluation(results, stage)
    print((args.out / "pretrain_metrics.md").read_text())
    print(json.dumps({"model": metadata.get("model_id")}))
    return 0


def fractions_list(text: str) -> tuple[float, ...]:
    """``--fractions``: percentages of the training patients, comma-separated, each in (0, 100]."""
    try:
        values = tuple(float(v) / 100 for v in text.split(","))
    except ValueError:
        values = ()
    if not values or not all(0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: percentages in (0, 100], comma-separated (e.g. 10,25,50,100)")
    return tuple(sorted(set(values)))


@COMMANDS("label-efficiency", "graders on 10-100 %% of the training patients, from scratch and from a pretrained "
          "Siamese tower (thesis Fig. 7.12): label_efficiency.md/.json/.png and the models",
          option("--manifest", type=Path, required=True, help="training manifest CSV (see README: manifest format)"),
          option("--validation", type=Path, required=True, help="validation manifest CSV the graders are scored on"),
          option("--init", type=Path, required=True, metavar="PRETRAINED_PT",
                 help="the Siamese model (spinecore pretrain) the pretrained graders start from"),
          option("--freeze-conv", action="store_true", help="keep the pretrained convolutions fixed"),
          option("--scheme", default="spider", help="scheme name (spider, genodisc) or JSON file"),
          option("--fractions", type=fractions_list,
                 help="percentages of the training patients, comma-separated (default: 10,25,50,100)"),
          option("--steps", type=positive_int, default=1500, help="optimiser steps of every grader (default %(default)s)"),
          seed(), cache("disc volumes of both manifests"),
          out("folder for label_efficiency.json/.md/.png and models/"))
def run_label_efficiency(args: argparse.Namespace) -> int:
    from spinecore.data.manifests import build_disc_set, read_manifest
    from spinecore.evaluate.label_efficiency import MEAN
    from spinecore.grade import get_scheme
    from spinecore.models import save_model
    from spinecore.report import staged_output
    from spinecore.report.label_efficiency import write_label_efficiency
    from spinecore.train.grading import GradingTraining, network_config
    from spinecore.train.label_efficiency import FRACTIONS, STARTS, label_efficiency
    from spinecore.train.transfer import pretrained

    scheme = get_scheme(args.scheme)
    settings = GradingTraining(seed=args.seed, steps=args.steps, freeze_conv=args.freeze_conv)
    pretrained(args.init, network_config(scheme, settings))  # a tower that does not fit fails before the long part
    train = build_disc_set(read_manifest(args.manifest, scheme), cache=args.cache)[0]
    validation = build_disc_set(read_manifest(args.validation, scheme), cache=args.cache)[0]
    fractions = args.fractions or FRACTIONS
    total = len(fractions) * len(STARTS)
    with staged_output(args.out) as stage:
        (stage / "models").mkdir()
        done = itertools.count(1)

        def finished(run: dict, model) -> None:
            save_model(stage / "models" / f"{100 * run['fraction']:g}pct-{run['start']}.pt", model)
            print(f"[{next(done)}/{total}] {run['fraction']:.0%} of the patients ({run['patients']}), {run['start']}: "
                  f"mean average per-class accuracy {100 * run['tasks'][MEAN]['accuracy']:.1f} %", flush=True)

        results = label_efficiency(train, validation, scheme, settings, args.init, args.command_line,
                                   fractions, finished)
        write_label_efficiency(results, stage)
    print((args.out / "label_efficiency.md").read_text())
    return 0


@COMMANDS("compare", "grade two studies of one person and report the changes per level (and whether they are "
          "one person at all): changes.csv, comparison.json, changes.png",
          option("baseline", type=Path, help="the earlier study (any input spinecore grade takes)"),
          option("follow_up", type=Path, metavar="follow-up", help="the later study"),
          out(), model("grading"), model("localiser", "--localiser"), model("Siamese", "--siamese"),
          option("--no-tta", action="store_true", help="one view per disc instead of the 54-view average"))
def run_compare(args: argparse.Namespace) -> int:
    from spinecore.grade import Grader
    from spinecore.grade.siamese import load_siamese
    from spinecore.io import load_study
    from spinecore.localise import Localiser
    from spinecore.longitudinal import compare
    from spinecore.report.changes import write_comparison

    series = [load_study(path).sagittal() for path in (args.baseline, args.follow_up)]
    siamese = load_siamese(args.siamese)
    comparison = compare(*series, Localiser.load(args.localiser), Grader.load(args.model), siamese, tta=not args.no_tta)
    write_comparison(comparison, args.out)
    verdict = "the same subject" if comparison.same_subject else "probably NOT the same subject"
    print(f"{verdict} (score {comparison.score:.2f}, threshold {comparison.threshold:.2f}; body distance "
          f"{comparison.distance:.3f}); "
          f"wrote changes.csv, comparison.json, changes.png, baseline/ and follow-up/ to {args.out}")
    return 0
