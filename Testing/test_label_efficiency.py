"""The label-efficiency study (thesis Fig. 7.12): nested patient shares, scores with patient-bootstrap
intervals, and `spinecore label-efficiency` training scratch and pretrained graders per share."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from spinecore.data.manifests import write_phantom_manifest
from spinecore.evaluate.label_efficiency import MEAN, paired_scores, run_scores
from spinecore.grade import GENODISC
from spinecore.grade.grader import load_grader_net
from spinecore.grade.loss import MISSING
from spinecore.train.label_efficiency import patient_share
from spinecore.train.transfer import convolutions

from conftest import run_cli
from test_train_transfer import random_discs, same_state, tower  # noqa: F401  (tower is a fixture)


def test_patient_shares_are_whole_patients_nested_and_rounded_up():
    data = random_discs(40)  # 20 patients, two discs each
    shares = {f: patient_share(data, f, seed=3) for f in (0.1, 0.25, 0.5, 1.0)}
    for fraction, share in shares.items():
        patients = set(share.patients)
        assert len(patients) == math.ceil(fraction * 20)
        assert len(share) == 2 * len(patients)  # every disc of a chosen patient, none of the others
        assert np.array_equal(share.volumes[0], data.volumes[data.patients.index(share.patients[0])])
    assert set(shares[0.1].patients) < set(shares[0.25].patients) < set(shares[0.5].patients) < set(data.patients)
    assert set(patient_share(data, 0.25, seed=4).patients) != set(shares[0.25].patients)
    assert len(set(patient_share(data, 0.001, seed=3).patients)) == 1


def test_scores_and_paired_differences_follow_the_predictions():
    rng = np.random.default_rng(0)
    n = 60
    labels = np.stack([rng.integers(0, t.n_classes, n) for t in GENODISC.tasks], 1)
    labels[:, GENODISC.task_names.index("stenosis")] = MISSING  # a task nobody graded
    patients = np.repeat(np.arange(20), 3)
    perfect, constant = labels.clip(0), np.zeros_like(labels)
    right = run_scores(GENODISC, labels, perfect, patients)["tasks"]
    assert right["pfirrmann"]["accuracy"] == 1.0 and right[MEAN]["accuracy"] == 1.0  # the ungraded task left out
    assert right["stenosis"]["ci95"] == [None, None]
    wrong = run_scores(GENODISC, labels, constant, patients)["tasks"]
    pfirrmann = wrong["pfirrmann"]
    assert pfirrmann["accuracy"] == pytest.approx(1 / 5)  # one of five classes always right, the others never
    assert pfirrmann["ci95"][0] <= pfirrmann["accuracy"] <= pfirrmann["ci95"][1]
    gain = paired_scores(GENODISC, labels, constant, perfect, patients)["tasks"]
    assert gain[MEAN]["difference"] == pytest.approx(1.0 - wrong[MEAN]["accuracy"], abs=1e-4)
    assert gain["pfirrmann"]["outside_zero"] and gain["pfirrmann"]["ci95"][0] > 0
    same = paired_scores(GENODISC, labels, constant, constant, patients)["tasks"]
    assert same[MEAN] == {"difference": 0.0, "ci95": [0.0, 0.0], "outside_zero": False}


def test_label_efficiency_command(tower, tmp_path):  # noqa: F811
    """Scratch and pretrained graders per share: the pretrained ones start from the tower (frozen
    here, so they still hold it), the scratch ones do not; table, figure and models written. Bad
    shares are a usage error; a tower that does not fit is a one-line error; neither writes anything."""
    path, siamese = tower
    for part in ("train", "validation"):
        (tmp_path / part).mkdir()
    train = write_phantom_manifest(tmp_path / "train", (11, 12), GENODISC, n_slices=5)
    validation = write_phantom_manifest(tmp_path / "validation", (13,), GENODISC, n_slices=5)
    common = ("label-efficiency", "--manifest", train, "--validation", validation, "--scheme", "genodisc",
              "--steps", 2)
    result = run_cli(*common, "--init", path, "--freeze-conv", "--fractions", "50,100", "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "[4/4] 100% of the patients (2), pretrained" in result.stdout
    results = json.loads((tmp_path / "out" / "label_efficiency.json").read_text())
    assert [(r["fraction"], r["start"], r["patients"]) for r in results["runs"]] == [
        (0.5, "scratch", 1), (0.5, "pretrained", 1), (1.0, "scratch", 2), (1.0, "pretrained", 2)]
    assert [d["fraction"] for d in results["differences"]] == [0.5, 1.0]
    for start, holds_tower in (("scratch", False), ("pretrained", True)):
        net, _, metadata = load_grader_net(tmp_path / "out" / "models" / f"50pct-{start}.pt")
        assert same_state(convolutions(net), siamese.convolutions) is holds_tower
        assert (metadata["transfer"] is not None) is holds_tower
    assert "| 50% (1) |" in (tmp_path / "out" / "label_efficiency.md").read_text()
    assert (tmp_path / "out" / "label_efficiency.png").stat().st_size > 0
    bad_shares = run_cli(*common, "--init", path, "--fractions", "0,50", "--out", tmp_path / "bad")
    assert bad_shares.returncode == 2 and "'0,50': percentages in (0, 100]" in bad_shares.stderr.splitlines()[-1]
    grader_file = tmp_path / "out" / "models" / "50pct-scratch.pt"
    not_a_tower = run_cli(*common, "--init", grader_file, "--out", tmp_path / "bad")
    assert not_a_tower.returncode == 2 and len(not_a_tower.stderr.strip().splitlines()) == 1, not_a_tower.stderr
    assert re.match(r"spinecore: error: .*50pct-scratch.pt: a 'grader' model, not a siamese model", not_a_tower.stderr)
    assert not (tmp_path / "bad").exists()
