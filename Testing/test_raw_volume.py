"""The raw-volume baseline (thesis 6.3): whole-scan input, one head per (level, task), the curriculum
start from a grader, training, evaluation in `spinecore evaluate`'s format, and bad input."""
import json

import numpy as np
import pytest
import torch
from conftest import run_cli

from spinecore.data.manifests import ManifestRow, read_manifest, write_phantom_manifest
from spinecore.data.scans import build_scan_set
from spinecore.errors import SpineCoreError
from spinecore.evaluate.metrics import average_class_accuracy
from spinecore.extract.scan import SCAN_SHAPE, SCAN_SIDE, scan_volume, tissue_median
from spinecore.grade import GENODISC, SPIDER
from spinecore.grade.calibration import dataset_logits
from spinecore.grade.grader import load_grader_net
from spinecore.grade.loss import MISSING, MultiTaskLoss, class_weights
from spinecore.grade.network import GradingNet, compact
from spinecore.grade.raw_volume import (
    LEVELS,
    load_raw_volume,
    per_level,
    raw_volume_config,
)
from spinecore.models import TrainedModel, default_model_path, save_model
from spinecore.phantom import PhantomSpec, make_phantom
from spinecore.train.raw_volume import (
    RawVolumeTraining,
    start_raw_volume,
    train_raw_volume_model,
)
from spinecore.train.seeding import seeded
from spinecore.train.transfer import convolutions

GRADER = default_model_path("grader")
#: Largest raw-volume model file allowed (bytes).
MAX_MODEL_BYTES = 20 * 1024**2


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """Four phantom mid-sagittal images (as most SPIDER scans are) and their true grades on the SPIDER scheme."""
    return write_phantom_manifest(tmp_path_factory.mktemp("raw"), range(500, 504), SPIDER, n_slices=1)


@pytest.fixture(scope="module")
def scans(manifest):
    return build_scan_set(read_manifest(manifest, SPIDER))


def _series(n_slices: int):
    return make_phantom(PhantomSpec(seed=5, n_slices=n_slices)).get("sag_t2").to_series("phantom")


def test_scan_volume_is_the_middle_slices_on_a_square_field_of_view():
    series = _series(11)
    volume = scan_volume(series)
    assert volume.array.shape == SCAN_SHAPE and volume.array.dtype == np.float32
    assert volume.present.all() and 0.0 <= volume.array.min() and volume.array.max() <= 1.0
    rows, cols = series.shape[1:]
    # the volume's centre is the scan's centre on its middle slice; square pixels cover the larger extent
    assert volume.scan_index([4, (SCAN_SIDE - 1) / 2, (SCAN_SIDE - 1) / 2]) == pytest.approx([5, (rows - 1) / 2,
                                                                                              (cols - 1) / 2])
    assert volume.pixel_mm * SCAN_SIDE == pytest.approx(max(rows * series.spacing[1], cols * series.spacing[2]))
    # the slice's tissue median is scaled to 0.5 (up to resampling)
    assert tissue_median(volume.array[4]) == pytest.approx(0.5, abs=0.1)
    assert tissue_median(volume.array[4]) != pytest.approx(tissue_median(series.array[5]), abs=0.1)


def test_a_single_mid_sagittal_image_sits_on_the_middle_channel():
    volume = scan_volume(_series(1))
    assert volume.present.tolist() == [False] * 4 + [True] + [False] * 4
    assert volume.array[4].max() > 0 and not volume.array[[0, 1, 2, 3, 5, 6, 7, 8]].any()


@pytest.mark.parametrize("scheme", [SPIDER, GENODISC])
def test_one_head_per_level_and_task(scheme):
    net = GradingNet(raw_volume_config(scheme)).eval()
    heads = per_level(scheme)
    assert len(net.heads) == len(heads.tasks) == len(LEVELS) * len(scheme.tasks)
    assert heads.task_names[len(scheme.tasks) * LEVELS.index("L5-S1")] == f"L5-S1/{scheme.tasks[0].name}"
    with torch.no_grad():
        logits = net(torch.rand(2, *SCAN_SHAPE))
    assert [tuple(x.shape) for x in logits] == [(2, t.n_classes) for t in heads.tasks]


def test_init_copies_the_graders_convolutions_exactly():
    grader, _, _ = load_grader_net(GRADER)
    seeded(0)
    started, record = start_raw_volume(SPIDER, RawVolumeTraining(init=str(GRADER)))
    copied, source = convolutions(started).state_dict(), convolutions(grader).state_dict()
    assert copied.keys() == source.keys()
    assert all(torch.equal(copied[k], source[k]) for k in copied)
    assert record["grader_model_id"] == "grader-spider-compact2d-seed0-5000"
    seeded(0)
    scratch, none = start_raw_volume(SPIDER, RawVolumeTraining())
    assert none is None
    assert not torch.equal(convolutions(scratch)[0][0].weight, source["0.0.weight"])


def test_scans_group_a_manifests_rows_and_keep_missing_levels_missing(manifest):
    scan = manifest.parent / "phantom-500.nii.gz"
    labels = (2, 0, 1, MISSING, 0, 0, 1, 1)
    rows = [ManifestRow("P", scan, "L4-L5", labels), ManifestRow("P", scan, "T11-T12", (0,) * 8),
            ManifestRow("P", scan, "L5-S1", (MISSING,) * 7 + (0,))]
    data = build_scan_set(rows)
    by_level = data.labels.reshape(1, len(LEVELS), 8)
    assert by_level[0, LEVELS.index("L4-L5")].tolist() == list(labels)
    assert (by_level[0, [LEVELS.index(x) for x in ("T12-L1", "L1-L2", "L2-L3", "L3-L4")]] == MISSING).all()
    _, _, discs = data.graded_discs()
    assert discs.levels == ["L4-L5", "L5-S1"] and discs.labels.tolist()[1] == [MISSING] * 7 + [0]
    with pytest.raises(SpineCoreError, match="graded twice at L4-L5") as info:
        build_scan_set(rows + rows[:1])
    assert str(scan) in str(info.value)


def _loss(net: GradingNet, data) -> float:
    criterion = MultiTaskLoss(class_weights(data.labels, [t.n_classes for t in per_level(SPIDER).tasks]))
    with torch.no_grad():
        return float(criterion(net.eval()(torch.from_numpy(data.inputs(slice(None))["t2"])),
                               torch.from_numpy(data.labels))[0])


def test_training_lowers_the_loss_and_writes_a_loadable_model(scans, tmp_path):
    settings = RawVolumeTraining(steps=40, batch_size=4, learning_rate=3e-3, init=str(GRADER))
    seeded(settings.seed)
    before = _loss(start_raw_volume(SPIDER, settings)[0], scans)
    trained = train_raw_volume_model(scans, SPIDER, settings, "test", calibration=scans)
    assert _loss(trained.network, scans) < 0.5 * before
    save_model(tmp_path / "raw.pt", trained)
    assert (tmp_path / "raw.pt").stat().st_size < MAX_MODEL_BYTES
    grader, scheme = load_raw_volume(tmp_path / "raw.pt")
    assert scheme == SPIDER and grader.scheme == per_level(SPIDER)
    loaded, state = grader.net.state_dict(), trained.network.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    # one temperature per task, shared by the six levels' heads
    assert grader.net.temperature.reshape(len(LEVELS), 8).unique(dim=0).shape == (1, 8)


def test_training_is_reproducible_from_the_seed(scans):
    def weights(seed: int) -> torch.Tensor:
        net = train_raw_volume_model(scans, SPIDER, RawVolumeTraining(seed=seed, steps=2, batch_size=2), "test").network
        return torch.cat([p.detach().flatten() for p in net.parameters()])

    first = weights(0)
    assert torch.equal(first, weights(0)) and not torch.equal(first, weights(1))


def test_train_and_evaluate_commands(manifest, scans, tmp_path):
    model = tmp_path / "raw.pt"
    done = run_cli("train-raw-volume", "--manifest", manifest, "--scheme", "spider", "--out", model, "--init", GRADER,
                   "--steps", 2, "--seed", 3)
    assert done.returncode == 0, done.stderr
    assert load_raw_volume(model)[0].metadata["transfer"]["from"] == str(GRADER)
    done = run_cli("evaluate-raw-volume", "--manifest", manifest, "--model", model, "--out", tmp_path / "eval",
                   "--no-tta")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert set(metrics["tasks"]) == set(SPIDER.task_names) and metrics["tta"] is False
    assert all(metrics["tasks"][t]["n"] > 0 for t in ("pfirrmann", "modic", "herniation"))
    assert "| pfirrmann |" in (tmp_path / "eval" / "metrics.md").read_text()
    # each graded (scan, level) is one disc, graded by its own level's heads
    grader, _ = load_raw_volume(model)
    heads = dataset_logits(grader, scans, tta=False)
    by_level = scans.labels.reshape(len(scans), len(LEVELS), 8)
    scan, level = np.nonzero(by_level[:, :, 0] != MISSING)
    predicted = np.array([heads[lv * 8][n].argmax() for n, lv in zip(scan, level)])
    pfirrmann = metrics["tasks"]["pfirrmann"]
    assert pfirrmann["n"] == len(scan) and metrics["discs"] == int((by_level != MISSING).any(2).sum())
    assert pfirrmann["average_class_accuracy"] == round(average_class_accuracy(by_level[scan, level, 0], predicted), 4)


def _three_d_grader(path):
    config = compact([t.n_classes for t in SPIDER.tasks], dims=3)
    config_dict = {"net": config.to_dict(), "scheme": SPIDER.to_dict()}
    save_model(path, TrainedModel("grader", config_dict, GradingNet(config), {}))
    return path


@pytest.mark.parametrize("case, reason", [
    ("manifest", "manifest lacks columns"),
    ("not a model", "not a readable model file"),
    ("localiser", "a 'localiser' model, not a grader model"),
    ("3-D grader", "do not fit the raw-volume net's"),
])
def test_bad_input_is_a_one_line_error_and_writes_nothing(manifest, tmp_path, case, reason):
    bad_manifest = tmp_path / "bad.csv"
    bad_manifest.write_text("patient,scan,level\nP,a.nii.gz,L4-L5\n")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a model")
    init = {"manifest": GRADER, "not a model": junk, "localiser": default_model_path("localiser"),
            "3-D grader": _three_d_grader(tmp_path / "grader3d.pt")}[case]
    out = tmp_path / "out" / "raw.pt"
    out.parent.mkdir()
    done = run_cli("train-raw-volume", "--manifest", bad_manifest if case == "manifest" else manifest,
                   "--out", out, "--init", init, "--steps", 1)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and reason in done.stderr
    assert str(bad_manifest if case == "manifest" else init) in done.stderr
    assert list(out.parent.iterdir()) == []


def test_evaluating_a_model_of_another_kind_is_a_one_line_error(manifest, tmp_path):
    done = run_cli("evaluate-raw-volume", "--manifest", manifest, "--model", GRADER, "--out", tmp_path / "eval")
    assert done.returncode == 2 and done.stderr.strip() == (
        f"spinecore: error: {GRADER}: a 'grader' model, not a raw_volume model")
    assert not (tmp_path / "eval").exists()
