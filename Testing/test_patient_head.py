"""The patient-level head (thesis 8.2.1): manifests, the synthetic phantom score, the head over the
six lumbar discs, and recovery of the synthetic score on held-out phantoms."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from spinecore.data.patients import (
    SYNTHETIC_WEIGHTS,
    build_patient_set,
    read_patient_manifest,
    synthetic_score,
    write_phantom_patients,
)
from spinecore.errors import SpineCoreError
from spinecore.evaluate.patient import evaluate_patient_head
from spinecore.grade.patient import PatientHead, PatientHeadConfig, feature_grader, load_patient_head
from spinecore.levels import LUMBAR_DISCS
from spinecore.localise import Localiser
from spinecore.train.patient import PatientHeadTraining, train_patient_head

from conftest import REPO, run_cli

PHANTOM_GRADER = REPO / "Resources" / "Models" / "phantom_grader.pt"
#: Held-out correlation the head must reach (20 training phantoms, 10 held out: seeds 0-3 gave 0.85-0.90).
MIN_HELD_OUT_R = 0.7


def test_synthetic_score_weighs_each_discs_pfirrmann_grade():
    discs = [{"level": level, "grades": {"pfirrmann": 2}} for level in LUMBAR_DISCS]
    base = synthetic_score(discs, seed=5)
    assert base - sum(SYNTHETIC_WEIGHTS.values()) == pytest.approx(np.random.default_rng([5, 8]).normal(0, 1.0))
    worse = [dict(d, grades={"pfirrmann": 3}) if d["level"] == "L5-S1" else d for d in discs]
    assert synthetic_score(worse, seed=5) - base == pytest.approx(SYNTHETIC_WEIGHTS["L5-S1"])
    assert synthetic_score(discs[1:], seed=5) - base == pytest.approx(-SYNTHETIC_WEIGHTS["T12-L1"])  # not in view
    assert synthetic_score(discs, seed=6) != base


def test_patient_manifest_reading_and_its_one_line_errors(tmp_path):
    path = tmp_path / "patients.csv"
    path.write_text("patient,scan,odi,pain\nP1,a.nii.gz,22,3\nP2,/abs/b.nii.gz,,4\n")
    names, rows = read_patient_manifest(path)
    assert names == ("odi", "pain") and rows[0].scan == tmp_path / "a.nii.gz" and str(rows[1].scan) == "/abs/b.nii.gz"
    assert rows[0].scores == (22.0, 3.0) and math.isnan(rows[1].scores[0])
    for text, reason in (("patient,scan\nP1,a\n", "needs the columns patient, scan and at least one score"),
                         ("patient,scan,odi\nP1,a,22\nP2,b,lots\n", "line 3: a score is not a number"),
                         ("patient,scan,odi\nP1,a,inf\n", "line 2: a score is infinite"),
                         ("patient,scan,odi\n", "no rows")):
        path.write_text(text)
        with pytest.raises(SpineCoreError, match=reason) as info:
            read_patient_manifest(path)
        assert str(path) in str(info.value)


def test_the_heads_kernels_span_the_six_discs_and_ignore_absent_ones():
    torch.manual_seed(0)
    head = PatientHead(PatientHeadConfig(features=4, scores=("a", "b"), hidden=3, dropout=0.0)).eval()
    assert head.across_discs.kernel_size == (len(LUMBAR_DISCS),) == (6,)
    features, present = torch.rand(2, 4, 6), torch.ones(2, 6)
    present[1, 0] = 0
    out = head(features, present)
    assert out.shape == (2, 2)
    changed = features.clone()
    changed[:, :, 0] += 1.0  # T12-L1's features: read where present, ignored where absent
    again = head(changed, present)
    assert not torch.allclose(again[0], out[0]) and torch.allclose(again[1], out[1])


@pytest.fixture(scope="module")
def phantom_sets(tmp_path_factory):
    """Disc features (bundled phantom grader) and synthetic scores of 20 training and 10 held-out
    phantoms (5 slices each)."""
    net, _ = feature_grader(PHANTOM_GRADER)
    localiser = Localiser.load()
    sets = {}
    for part, seeds in (("train", range(600, 620)), ("held_out", range(700, 710))):
        names, rows = read_patient_manifest(write_phantom_patients(tmp_path_factory.mktemp(part), seeds, n_slices=5))
        sets[part] = build_patient_set(rows, net, localiser)
    return names, sets


def test_the_head_recovers_the_synthetic_score_on_held_out_phantoms_reproducibly(phantom_sets):
    names, sets = phantom_sets
    assert len(sets["train"]) == 20 and len(sets["held_out"]) == 10
    short = [train_patient_head(sets["train"], names, PatientHeadTraining(seed=seed, steps=20)) for seed in (0, 0, 1)]
    assert all(torch.equal(a, b) for a, b in zip(short[0].state_dict().values(), short[1].state_dict().values()))
    assert not torch.equal(short[2].across_discs.weight, short[0].across_discs.weight)
    trained = train_patient_head(sets["train"], names, PatientHeadTraining(seed=0))
    metrics = evaluate_patient_head(trained, sets["held_out"])["scores"]["synthetic_score"]
    assert metrics["patients"] == 10 and metrics["pearson_r"] > MIN_HELD_OUT_R, metrics
    untrained = train_patient_head(sets["train"], names, PatientHeadTraining(seed=0, steps=1))
    assert evaluate_patient_head(untrained, sets["held_out"])["scores"]["synthetic_score"]["rmse"] > metrics["rmse"]


def test_patient_head_commands(tmp_path):
    """phantom-patients → train-patient-head → evaluate-patient-head; a grader other than the head's
    and a bad manifest are one-line errors that write nothing."""
    result = run_cli("phantom-patients", "--out", tmp_path / "p", "--seeds", "600:602", "--slices", 5)
    assert result.returncode == 0, result.stderr
    manifest = tmp_path / "p" / "patients.csv"
    result = run_cli("train-patient-head", "--manifest", manifest, "--out", tmp_path / "head.pt", "--grader",
                     PHANTOM_GRADER, "--steps", 5, "--seed", 3)
    assert result.returncode == 0, result.stderr
    head, metadata = load_patient_head(tmp_path / "head.pt")
    assert head.config.scores == ("synthetic_score",) and metadata["train_patients"] == 2
    assert metadata["grader_model_id"].startswith("grader-genodisc") and "--seed 3" in metadata["command"]
    result = run_cli("evaluate-patient-head", "--manifest", manifest, "--model", tmp_path / "head.pt", "--grader",
                     PHANTOM_GRADER, "--out", tmp_path / "eval")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "eval" / "patient_metrics.json").read_text())
    assert metrics["patients"] == 2 and (tmp_path / "eval" / "patient_scores.png").stat().st_size > 0
    bad = tmp_path / "bad.csv"
    bad.write_text("patient,scan,odi\nP1,p/phantom-600.nii.gz,many\n")
    other_grader = "head.pt: trained on the features of grader grader-genodisc"
    for args, reason in ((("--manifest", manifest, "--model", tmp_path / "head.pt"), other_grader),
                         (("--manifest", bad, "--model", tmp_path / "head.pt", "--grader", PHANTOM_GRADER),
                          "bad.csv: line 2: a score is not a number")):
        result = run_cli("evaluate-patient-head", *args, "--out", tmp_path / "none")
        assert result.returncode == 2 and result.stderr.startswith("spinecore: error: ") and reason in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "none").exists()
