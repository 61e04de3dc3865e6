"""Grading training and evaluation: manifests, metrics, calibration, and a phantom-trained model."""
import json
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import cohen_kappa_score

from spinecore.errors import SpineCoreError
from spinecore.grade import GENODISC, SPIDER, Grader
from spinecore.grade.loss import MISSING
from spinecore.data.manifests import (ManifestRow, build_disc_set, read_manifest, write_manifest,
                                      write_phantom_manifest)
from spinecore.evaluate.grading import evaluate_grader
from spinecore.evaluate.metrics import (NOT_FOUND, average_class_accuracy, end_to_end_accuracy, kappa,
                                       paired_difference, task_metrics)
from spinecore.grade.calibration import expected_calibration_error, fit_temperature, softmax
from spinecore.levels import DISCS
from spinecore.train.grading import GradingTraining, train_grading_model

from conftest import REPO, run_cli

SHARED = REPO.parent / "shared" / "data"


def test_manifest_round_trip_and_missing_grades(tmp_path):
    rows = [ManifestRow("P1", tmp_path / "a.nii.gz", "L4-L5", (2, 0, 1, MISSING, 0, 0, 1, 1)),
            ManifestRow("P1", tmp_path / "a.nii.gz", "L5-S1", (MISSING,) * 8)]
    path = tmp_path / "m.csv"
    write_manifest(path, SPIDER, rows)
    assert path.read_text().splitlines()[1] == "P1,a.nii.gz,L4-L5,3,0,1,,0,0,1,1"
    assert read_manifest(path, SPIDER) == rows


@pytest.mark.parametrize("text, reason", [
    ("patient,scan,level\nP,a,L4-L5\n", "lacks columns"),
    ("patient,scan,level,pfirrmann,modic,endplate_upper,endplate_lower,spondylolisthesis,herniation,narrowing,bulging\n"
     "P,a,L4-L5,7,0,0,0,0,0,0,0\n", "line 2: pfirrmann = '7' is not one of"),
    ("patient,scan,level,pfirrmann,modic,endplate_upper,endplate_lower,spondylolisthesis,herniation,narrowing,bulging\n"
     "P,a,L9,1,0,0,0,0,0,0,0\n", "line 2: level 'L9'"),
])
def test_bad_manifests(tmp_path, text, reason):
    path = tmp_path / "m.csv"
    path.write_text(text)
    with pytest.raises(SpineCoreError, match=reason) as info:
        read_manifest(path, SPIDER)
    assert str(path) in str(info.value)


def test_metrics_by_hand():
    truth = np.array([0, 0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 0, 1, 0, 2])
    assert average_class_accuracy(truth, predicted) == pytest.approx((3 / 4 + 1 / 2 + 1) / 3)
    task = SPIDER.task("pfirrmann")
    assert kappa(truth, predicted, task) == pytest.approx(cohen_kappa_score(truth, predicted, weights="linear"))
    m = task_metrics(task, np.append(truth, MISSING), np.append(predicted, 4), np.array(list("aabbccdd")), majority=0)
    assert m["n"] == 7 and m["patients"] == 4
    assert m["baseline_average_class_accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    low, high = m["accuracy_ci95"]
    assert low <= m["average_class_accuracy"] <= high
    assert np.array(m["confusion"]["rows_truth_cols_predicted"]).sum() == 7
    # end to end: two more graded discs (classes 0 and 2) the localiser missed count as wrong
    end = end_to_end_accuracy(np.append(truth, [0, 2, MISSING]), np.append(predicted, [NOT_FOUND, NOT_FOUND, 1]),
                              np.array(list("aabbccdeef")))
    assert end["n"] == 9 and end["missed"] == 2
    assert end["average_class_accuracy"] == pytest.approx((3 / 5 + 1 / 2 + 1 / 2) / 3, abs=1e-4)
    low, high = end["accuracy_ci95"]
    assert low <= end["average_class_accuracy"] <= high


def test_kappa_matches_scikit_learn_on_random_gradings():
    # spinecore's kappa (numpy, fast enough for bootstraps) against scikit-learn's, weighted and not,
    # with predictions outside the task's classes (left out by both) and one-class cases (undefined)
    rng = np.random.default_rng(0)
    for task in (SPIDER.task("pfirrmann"), SPIDER.task("herniation"), GENODISC.task("marrow_upper")):
        labels = list(range(task.n_classes))
        for trial in range(60):
            n = int(rng.integers(2, 40))
            truth = rng.integers(0, task.n_classes, n)
            predicted = np.where(rng.random(n) < 0.6, truth, rng.integers(0, task.n_classes, n))
            predicted[: trial % 3] = NOT_FOUND
            if trial % 10 == 0:
                truth[:], predicted[:] = truth[0], truth[0]
                assert np.isnan(kappa(truth, predicted, task))
                continue
            with warnings.catch_warnings():  # scikit-learn warns where kappa is undefined (one class left)
                warnings.simplefilter("ignore")
                expected = cohen_kappa_score(truth, predicted, labels=labels,
                                             weights="linear" if task.ordinal else None)
            assert kappa(truth, predicted, task) == pytest.approx(expected, abs=1e-12, nan_ok=True), (truth, predicted)


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, (4000, 3))
    labels = np.array([rng.choice(3, p=p) for p in softmax(true_logits)])
    overconfident = true_logits * 3.0
    temperature = fit_temperature(overconfident, labels)
    assert temperature == pytest.approx(3.0, rel=0.1)
    assert (expected_calibration_error(softmax(overconfident, temperature), labels)
            < 0.5 * expected_calibration_error(softmax(overconfident), labels))


def phantom_disc_set(folder, seeds):
    """The disc volumes of 5-slice phantoms with their true genodisc grades."""
    folder.mkdir()
    return build_disc_set(read_manifest(write_phantom_manifest(folder, seeds, GENODISC, n_slices=5), GENODISC))[0]


def test_phantom_trained_model_separates_grades(tmp_path):
    """Two minutes of training on 24 phantom patients: on 6 unseen ones, the (focal) marrow changes
    and the Pfirrmann grade must be told apart (seed 0 reached kappa 1.0 / 0.89 and 0.79)."""
    train = phantom_disc_set(tmp_path / "train", range(300, 324))
    test = phantom_disc_set(tmp_path / "test", range(400, 406))
    model = train_grading_model(train, GENODISC, GradingTraining(seed=0, steps=400, batch_size=16), "test")
    metrics = evaluate_grader(Grader(model.network, GENODISC, model.metadata), test, tta=False)["tasks"]
    assert metrics["pfirrmann"]["kappa"] > 0.4, metrics["pfirrmann"]
    for task in ("marrow_upper", "marrow_lower"):
        assert metrics[task]["kappa"] > 0.6 and metrics[task]["average_class_accuracy"] > 0.8, metrics[task]


def test_paired_difference_resamples_both_models_together():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 300)
    patients = np.repeat(np.arange(30), 10)
    reference = np.where(rng.random(300) < 0.5, truth, (truth + 1) % 3)
    better = np.where(rng.random(300) < 0.8, truth, reference)
    result = paired_difference(truth, reference, better, patients)
    assert result["difference"] == round(average_class_accuracy(truth, better) - average_class_accuracy(truth, reference), 4)
    assert 0 < result["ci95"][0] < result["difference"] < result["ci95"][1] and result["outside_zero"]
    assert paired_difference(truth, reference, reference, patients)["ci95"] == [0, 0]
    truth[:100] = MISSING
    assert paired_difference(truth, reference, better, patients)["n"] == 200


def test_bootstrap_weights_count_each_drawn_patients_discs_as_often_as_drawn():
    # every resampling at once: each statistic of the weights equals the statistic of the resampled discs
    from spinecore.evaluate.metrics import BOOTSTRAP, bootstrap

    rng = np.random.default_rng(1)
    task = SPIDER.task("pfirrmann")
    patients = np.array([f"p{i}" for i in rng.integers(0, 12, 90)])
    truth = rng.integers(0, task.n_classes, 90)
    predicted = np.where(rng.random(90) < 0.6, truth, rng.integers(0, task.n_classes, 90))
    weights = bootstrap({"weights": lambda w: w}, patients, seed=3)["weights"]
    assert weights.shape == (BOOTSTRAP, 90)
    names = np.unique(patients)
    for row in weights[:25]:
        drawn = {name: row[patients == name] for name in names}
        assert all(len(set(w)) == 1 for w in drawn.values())  # a patient's discs are drawn together
        assert sum(w[0] for w in drawn.values()) == len(names)
        index = np.repeat(np.arange(90), row.astype(int))
        assert average_class_accuracy(truth, predicted, row[None])[0] == pytest.approx(
            average_class_accuracy(truth[index], predicted[index]))
        assert kappa(truth, predicted, task, row[None])[0] == pytest.approx(
            cohen_kappa_score(truth[index], predicted[index], weights="linear"))


def test_an_ensemble_is_scored_on_the_mean_of_its_models_logits():
    from spinecore.evaluate.grading import ENSEMBLE, compare_graders
    from spinecore.grade.calibration import dataset_logits
    from spinecore.grade.network import GradingNet, compact

    from test_train_transfer import random_discs

    data = random_discs(24)
    graders = {}
    for seed in (1, 2):
        torch.manual_seed(seed)
        graders[f"g{seed}"] = Grader(GradingNet(compact([t.n_classes for t in GENODISC.tasks])).eval(), GENODISC,
                                     {"model_id": f"g{seed}", "train_majority": {}})
    comparison = compare_graders(graders, data, tta=False, ensemble=True)
    assert list(comparison["models"]) == ["g1", "g2", ENSEMBLE]
    assert comparison["models"][ENSEMBLE]["model"] == "mean of g1 + g2"
    each = [dataset_logits(g, data, tta=False) for g in graders.values()]
    for n, task in enumerate(GENODISC.tasks):
        predicted = ((each[0][n] + each[1][n]) / 2).argmax(1)
        confusion = np.zeros((task.n_classes, task.n_classes), int)
        np.add.at(confusion, (data.labels[:, n], predicted), 1)
        assert comparison["models"][ENSEMBLE]["tasks"][task.name]["confusion"]["rows_truth_cols_predicted"] \
            == confusion.tolist()
        assert ENSEMBLE in comparison["differences"][task.name]


def test_train_and_evaluate_commands_are_reproducible(tmp_path):
    """`spinecore train` on a small phantom manifest twice with one seed gives identical weights (the
    second from the disc volumes the first cached); `spinecore evaluate` reports every task with
    intervals and the baseline."""
    manifest = write_phantom_manifest(tmp_path, (11, 12, 13), GENODISC)
    rows = read_manifest(manifest, GENODISC)
    assert {r.patient for r in rows} == {"phantom-11", "phantom-12", "phantom-13"}
    cache = ("--cache", tmp_path / "cache")
    models = []
    for name in ("a.pt", "b.pt"):
        result = run_cli("train", "--manifest", manifest, "--scheme", "genodisc", "--out", tmp_path / name,
                         "--steps", 3, "--seed", 4, *cache)
        assert result.returncode == 0, result.stderr
        models.append(torch.load(tmp_path / name, weights_only=True))
    assert all(torch.equal(models[0]["state_dict"][k], models[1]["state_dict"][k]) for k in models[0]["state_dict"])
    assert "--seed 4" in models[0]["metadata"]["command"]
    result = run_cli("evaluate", "--manifest", manifest, "--model", tmp_path / "a.pt", "--out", tmp_path / "eval",
                     "--no-tta", *cache)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert set(metrics["tasks"]) == set(GENODISC.task_names) and metrics["discs"] == len(rows)
    assert "| pfirrmann |" in (tmp_path / "eval" / "metrics.md").read_text()

    # several models on the same discs: each model's results as alone, and the paired difference; a model of
    # another scheme is refused before any work
    assert run_cli("train", "--manifest", manifest, "--scheme", "genodisc", "--out", tmp_path / "c.pt",
                   "--steps", 3, "--seed", 5, *cache).returncode == 0
    result = run_cli("evaluate", "--manifest", manifest, "--model", tmp_path / "a.pt", "--model", tmp_path / "c.pt",
                     "--out", tmp_path / "compare", "--no-tta", *cache)
    assert result.returncode == 0, result.stderr
    comparison = json.loads((tmp_path / "compare" / "comparison.json").read_text())
    assert list(comparison["models"]) == ["1-a", "2-c"] and comparison["reference"] == "1-a"
    assert comparison["models"]["1-a"] == metrics
    for task in GENODISC.task_names:
        accuracies = [comparison["models"][m]["tasks"][task]["average_class_accuracy"] for m in ("1-a", "2-c")]
        assert abs(comparison["differences"][task]["2-c"]["difference"] - (accuracies[1] - accuracies[0])) < 1e-3
    assert json.loads((tmp_path / "compare" / "2-c" / "metrics.json").read_text()) == comparison["models"]["2-c"]
    assert "| pfirrmann |" in (tmp_path / "compare" / "comparison.md").read_text()
    result = run_cli("evaluate", "--manifest", manifest, "--model", tmp_path / "a.pt",
                     "--model", REPO / "Resources" / "Models" / "grader.pt", "--out", tmp_path / "mixed")
    assert result.returncode != 0 and "compare models of one scheme" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "mixed").exists()
    result = run_cli("evaluate", "--manifest", manifest, "--model", tmp_path / "a.pt", "--ensemble",
                     "--out", tmp_path / "alone")
    assert result.returncode == 2 and result.stderr.strip() == "spinecore: error: --ensemble needs at least two --model files"
    assert not (tmp_path / "alone").exists()


def test_phantom_manifest_with_independent_findings_labels_the_drawn_grades(tmp_path):
    from spinecore.data.manifests import phantom_labels
    from spinecore.phantom.anatomy import independent_grades

    rows = read_manifest(write_phantom_manifest(tmp_path, (11,), GENODISC, independent_findings=True), GENODISC)
    rng = np.random.default_rng([11, 2])
    drawn = {level: phantom_labels(independent_grades(rng).as_dict(), GENODISC) for level in DISCS}
    assert rows and all(r.labels == drawn[r.level] for r in rows)
    (tmp_path / "default").mkdir()
    default = read_manifest(write_phantom_manifest(tmp_path / "default", (11,), GENODISC), GENODISC)
    assert [r.labels for r in default] != [r.labels for r in rows]


@pytest.mark.skipif(not (SHARED / "spider_midsag").is_dir(), reason="needs the shared SPIDER data")
def test_spider_manifests_split_by_patient():
    from spinecore.data.spider import spider_manifests

    split = spider_manifests(SHARED, SPIDER)
    train = {r.patient for r in split["train"]}
    validation = {r.patient for r in split["validation"]}
    assert not train & validation and len(validation) == 35
    assert {"7", "41", "81", "129", "166", "234"} <= validation
    assert not any(int(p) % 5 == 0 for p in train | validation)  # the held-out patients are not in the pack
    assert {"107", "152"}.isdisjoint(train | validation)  # doubtful level numbering left out
