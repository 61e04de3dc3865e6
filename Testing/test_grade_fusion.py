"""Multi-stream grading (thesis 6.1.2, 6.2.2): fusion networks, missing streams, stream dropout,
model files, manifests with other streams and training a fused model."""
import shutil

import numpy as np
import pytest
import torch

from spinecore.data.manifests import ManifestRow, build_disc_set, read_manifest, write_manifest, write_phantom_manifest
from spinecore.extract import disc_volumes, t1_disc_volumes
from spinecore.grade import GENODISC, SPIDER, Grader, compact, load_grader_net
from spinecore.grade.fusion import FusionConfig, FusionNet, drop_streams
from spinecore.grade.grader import BUNDLED_T1T2, default_grader_path
from spinecore.grade.loss import MISSING
from spinecore.models import TrainedModel, default_model_path, save_model
from spinecore.phantom import PhantomSpec, make_phantom
from spinecore.pipeline import analyse
from spinecore.report.gradings import unused_streams_note
from spinecore.streams import FUSIONS
from spinecore.train.grading import GradingTraining, train_grading_model

from conftest import REPO, disc_set_labelled_by_t1, run_cli

N_CLASSES = [t.n_classes for t in SPIDER.tasks]
STREAM_SETS = [("t2", "t1"), ("t2", "axial"), ("t2", "t1", "axial")]


def _inputs(n=2, streams=("t2", "t1", "axial"), seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = {"t2": (9, 112, 224), "t1": (9, 112, 224), "axial": (3, 224, 224)}
    return {s: torch.rand(n, *shapes[s], generator=g) for s in streams}


def _net(streams, fusion, seed=0):
    torch.manual_seed(seed)
    return FusionNet(FusionConfig(compact(N_CLASSES), streams, fusion)).eval()


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("streams", STREAM_SETS)
def test_every_fusion_gives_one_head_per_task(streams, fusion):
    net = _net(streams, fusion)
    with torch.no_grad():
        out = net(_inputs(3, streams))
    assert [tuple(o.shape) for o in out] == [(3, n) for n in N_CLASSES]
    assert set(net.towers) == ({"sagittal"} | ({"axial"} if "axial" in streams else set()))  # T1 and T2 share


def test_fusions_differ_in_what_follows_fc6():
    concat, summed, late = (_net(("t2", "t1"), f) for f in FUSIONS)
    assert concat.heads["fused"][0][0][0].in_features == 2 * summed.heads["fused"][0][0][0].in_features
    assert set(late.heads) == {"sagittal"}  # FC7/FC8 per tower, shared by T1 and T2
    x = _inputs(2, ("t2", "t1"))
    with torch.no_grad():
        swapped = {"t2": x["t1"], "t1": x["t2"]}
        # a sum is symmetric in two streams of one tower, a concatenation is not
        assert torch.allclose(summed(x)[0], summed(swapped)[0], atol=1e-5)
        assert not torch.allclose(concat(x)[0], concat(swapped)[0], atol=1e-5)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_a_missing_stream_is_an_all_zero_volume(fusion):
    net = _net(("t2", "t1", "axial"), fusion)
    x = _inputs(2)
    with torch.no_grad():
        absent = net({"t2": x["t2"], "axial": x["axial"]})
        zero = net({**x, "t1": torch.zeros_like(x["t1"])})
        full = net(x)
        # one disc with its T1, one without, in one batch: each is graded as on its own
        mixed = net({**x, "t1": torch.stack([x["t1"][0], torch.zeros_like(x["t1"][1])])})
    assert all(torch.allclose(a, z, atol=1e-5) for a, z in zip(absent, zero))
    assert not torch.allclose(absent[0], full[0], atol=1e-4)
    assert torch.allclose(mixed[0][0], full[0][0], atol=1e-5) and torch.allclose(mixed[0][1], absent[0][1], atol=1e-5)


def test_stream_dropout_drops_one_extra_stream_and_keeps_the_t2():
    x = _inputs(64)
    x["axial"][:8] = 0  # these discs have no axial: only their T1 can go
    out = drop_streams(x, torch.Generator().manual_seed(1), probability=1.0)
    assert torch.equal(out["t2"], x["t2"])
    dropped = {s: out[s].flatten(1).abs().amax(1) == 0 for s in ("t1", "axial")}
    assert torch.all(dropped["t1"][:8])
    assert torch.all(dropped["t1"][8:] ^ dropped["axial"][8:])  # exactly one of the two
    assert 10 < int(dropped["t1"][8:].sum()) < 46  # a fair choice between them
    kept = drop_streams(x, torch.Generator().manual_seed(1), probability=0.0)
    assert all(torch.equal(kept[s], x[s]) for s in x)
    half = drop_streams(x, torch.Generator().manual_seed(2), probability=0.3)
    lost = sum(int((half[s].flatten(1).abs().amax(1) == 0).sum() - (x[s].flatten(1).abs().amax(1) == 0).sum())
               for s in ("t1", "axial"))
    assert 8 <= lost <= 32


def test_fused_model_file_round_trip(tmp_path):
    net = _net(("t2", "t1"), "fc8-sum", seed=3)
    net.temperature.copy_(torch.linspace(0.5, 2.0, len(N_CLASSES)))
    config = {**net.config.to_dict(), "scheme": SPIDER.to_dict()}
    save_model(tmp_path / "fused.pt", TrainedModel("grader", config, net, {"fusion": "fc8-sum", "streams": ["t2", "t1"]}))
    stored = torch.load(tmp_path / "fused.pt", weights_only=True)
    assert stored["config"]["fusion"] == "fc8-sum" and stored["metadata"]["streams"] == ["t2", "t1"]
    loaded, scheme, _ = load_grader_net(tmp_path / "fused.pt")
    assert isinstance(loaded, FusionNet) and loaded.streams == ("t2", "t1") and scheme.name == "spider"
    x = _inputs(2, ("t2", "t1"))
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(net(x), loaded(x)))
    assert torch.equal(loaded.temperature, net.temperature)


@pytest.fixture(scope="module")
def t1_study():
    study = make_phantom(PhantomSpec(seed=6, axial=False, t1_rotation_deg=4.0, t1_shift_mm=(2.0, 5.0, -4.0)))
    t2 = study.get("sag_t2").to_series("t2")
    spine = study.reference_spine()
    volumes = disc_volumes(t2, spine)
    return volumes, t1_disc_volumes(study.get("sag_t1").to_series("t1"), volumes, spine, t2)


def test_grader_records_the_streams_each_disc_used(t1_study):
    volumes, t1 = t1_study
    fused = Grader(_net(("t2", "t1"), "fc6-sum"), SPIDER, {"model_id": "fused"})
    some = {level: v for level, v in t1.items() if level != volumes[0].level}
    gradings = fused.grade_volumes(volumes, tta=False, others={"t1": some})
    assert [d.streams for d in gradings.discs] == [("t2",)] + [("t2", "t1")] * (len(volumes) - 1)
    alone = fused.grade_volumes(volumes[:1], tta=False)
    assert np.allclose(alone.discs[0].probabilities["pfirrmann"], gradings.discs[0].probabilities["pfirrmann"], atol=1e-5)
    # a single-stream model reads only the T2, whatever else it is given
    single = Grader.load()
    plain = single.grade_volumes(volumes[:2], tta=False)
    offered = single.grade_volumes(volumes[:2], tta=False, others={"t1": t1})
    assert all(d.streams == ("t2",) for d in offered.discs)
    assert all(np.array_equal(a.probabilities["modic"], b.probabilities["modic"]) for a, b in zip(plain.discs, offered.discs))


def test_manifest_with_other_streams_round_trips_and_may_lack_them(tmp_path):
    rows = [ManifestRow("P1", tmp_path / "a.nii.gz", "L4-L5", (2, 0, 1, MISSING, 0, 0, 1, 1), tmp_path / "a_t1.nii.gz"),
            ManifestRow("P2", tmp_path / "b.nii.gz", "L5-S1", (MISSING,) * 8, None, tmp_path / "b_ax.nii.gz")]
    path = tmp_path / "m.csv"
    write_manifest(path, SPIDER, rows)
    assert path.read_text().splitlines()[0].endswith(",bulging,scan_t1,scan_axial")
    assert read_manifest(path, SPIDER) == rows
    assert rows[0].others == {"t1": tmp_path / "a_t1.nii.gz"} and rows[1].others == {"axial": tmp_path / "b_ax.nii.gz"}


def test_disc_set_holds_other_streams_with_zeros_where_missing(tmp_path):
    manifest = write_phantom_manifest(tmp_path, (21,), GENODISC, n_slices=5, streams=("t2", "t1", "axial"))
    rows = read_manifest(manifest, GENODISC)
    assert all(r.scan_t1 is not None for r in rows) and 0 < sum(r.scan_axial is not None for r in rows) < len(rows)
    data, missed = build_disc_set(rows)
    assert set(data.streams) == {"t1", "axial"} and not missed
    has_axial = data.streams["axial"].reshape(len(data), -1).max(1) > 0
    assert has_axial.tolist() == [r.scan_axial is not None for r in rows]
    assert data.inputs([0])["t1"].shape == (1, 9, 112, 224) and data.inputs([0])["axial"].shape == (1, 3, 224, 224)
    assert data.streams["t1"].reshape(len(data), -1).max(1).min() > 0


def test_fused_training_smoke_and_bad_options(tmp_path):
    """A few steps of a T1 + T2 model on phantoms through `spinecore phantom-manifest --streams` and `spinecore
    train`; the fusion lands in the model file."""
    result = run_cli("phantom-manifest", "--out", tmp_path / "phantoms", "--seeds", "31:33", "--slices", 3,
                     "--streams", "t2,t1")
    assert result.returncode == 0, result.stderr
    manifest = tmp_path / "phantoms" / "manifest.csv"
    assert all(row.scan_t1.is_file() for row in read_manifest(manifest, GENODISC))
    assert run_cli("phantom-manifest", "--out", tmp_path / "bad", "--streams", "t1").returncode == 2
    assert not (tmp_path / "bad").exists()
    out = tmp_path / "fused.pt"
    result = run_cli("train", "--manifest", manifest, "--scheme", "genodisc", "--out", out, "--steps", 2,
                     "--streams", "t2,t1", "--fusion", "fc6-concat")
    assert result.returncode == 0, result.stderr
    stored = torch.load(out, weights_only=True)
    assert stored["metadata"]["fusion"] == "fc6-concat" and stored["metadata"]["streams"] == ["t2", "t1"]
    assert Grader.load(out).streams == ("t2", "t1")
    for options, reason in ((["--streams", "t2,t1"], "--fusion goes with"), (["--fusion", "fc6-sum"], "--fusion goes with"),
                            (["--streams", "t2,t1", "--fusion", "fc6-sum", "--branch", "conv5"], "branches at fc6")):
        result = run_cli("train", "--manifest", manifest, "--scheme", "genodisc", "--out", tmp_path / "x.pt", *options)
        assert result.returncode == 2 and reason in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.pt").exists()
    result = run_cli("train", "--manifest", manifest, "--scheme", "genodisc", "--out", tmp_path / "x.pt",
                     "--streams", "t1,t2", "--fusion", "fc6-sum")
    assert result.returncode == 2 and "t2 first" in result.stderr


def test_fused_model_learns_from_its_streams():
    """Training on disc sets whose T1 alone carries the label: the fused model must use it."""
    data, labels = disc_set_labelled_by_t1("marrow_upper", "L4-L5", (slice(None), slice(40, 70), slice(80, 140)))
    n, task = len(labels), GENODISC.task_names.index("marrow_upper")
    settings = GradingTraining(seed=0, steps=90, batch_size=16, streams=("t2", "t1"), fusion="fc6-sum")
    model = train_grading_model(data, GENODISC, settings, "test")
    grader = Grader(model.network, GENODISC, model.metadata)
    x = {s: torch.from_numpy(v) for s, v in data.inputs(slice(0, n)).items()}
    with_t1 = grader.logits(x, tta=False)[task].argmax(1).numpy()
    without_t1 = grader.logits({"t2": x["t2"]}, tta=False)[task].argmax(1).numpy()
    assert (with_t1 == labels).mean() > 0.75 and (without_t1 == labels).mean() < 0.65


@pytest.fixture(scope="module")
def fused_models(tmp_path_factory):
    """Untrained fused model files (the grading commands only need their streams): T1 + T2, and T1 + T2 + axial."""
    folder = tmp_path_factory.mktemp("fused")
    paths = {}
    for streams in (("t2", "t1"), ("t2", "t1", "axial")):
        net = _net(streams, "fc6-sum")
        path = folder / f"{'-'.join(streams)}.pt"
        save_model(path, TrainedModel("grader", {**net.config.to_dict(), "scheme": SPIDER.to_dict()}, net,
                                      {"model_id": "fused-" + "+".join(streams)}))
        paths[streams] = path
    return paths


def _streams(out):
    import json

    return {d["level"]: d["streams"] for d in json.loads((out / "gradings.json").read_text())["discs"]}


def test_grade_with_separate_t1_file(phantom_dir, fused_models, tmp_path):
    t2, t1 = phantom_dir / "nifti" / "sag_t2.nii.gz", phantom_dir / "nifti" / "sag_t1.nii.gz"
    result = run_cli("grade", t2, "--t1", t1, "--model", fused_models["t2", "t1"], "--out", tmp_path / "fused", "--no-tta")
    assert result.returncode == 0, result.stderr
    streams = _streams(tmp_path / "fused")
    assert streams and all(s == ["t2", "t1"] for s in streams.values())
    assert "streams: t2 + t1" in result.stdout
    # by default a study with a T1 is graded by the bundled T1 + T2 grader
    result = run_cli("grade", t2, "--t1", t1, "--out", tmp_path / "default", "--no-tta")
    assert result.returncode == 0, result.stderr
    assert all(s == ["t2", "t1"] for s in _streams(tmp_path / "default").values()) and "not used" not in result.stdout
    # the bundled T2 model grades the T2 only, and says so: no fake fusion
    result = run_cli("grade", t2, "--t1", t1, "--model", default_model_path("grader"), "--out", tmp_path / "plain",
                     "--no-tta")
    assert result.returncode == 0, result.stderr
    assert all(s == ["t2"] for s in _streams(tmp_path / "plain").values()) and "t1 not used" in result.stdout


def test_grade_refuses_a_t1_of_another_geometry(phantom_dir, fused_models, tmp_path):
    from spinecore.io import load_study
    from spinecore.io.write import write_volume

    t1 = load_study(phantom_dir / "nifti" / "sag_t1.nii.gz").sagittal()
    affine = t1.geometry.affine.copy()
    affine[:3, 3] += (0.0, 300.0, 0.0)
    moved = write_volume(tmp_path / "elsewhere_t1.nii.gz", t1.array, type(t1.geometry)(affine, t1.geometry.shape))
    out = tmp_path / "out"
    result = run_cli("grade", phantom_dir / "nifti" / "sag_t2.nii.gz", "--t1", moved, "--model",
                     fused_models["t2", "t1"], "--out", out, "--no-tta")
    assert result.returncode == 2, result.stdout
    assert result.stderr.count("\n") == 1 and "elsewhere_t1.nii.gz" in result.stderr and "does not overlap" in result.stderr
    assert not out.exists() or not any(out.iterdir())


def test_grade_dicom_study_uses_its_t1_and_axial_series(phantom_dir, phantom_truth, fused_models, tmp_path):
    result = run_cli("grade", phantom_dir / "dicom", "--model", fused_models["t2", "t1", "axial"], "--out", tmp_path,
                     "--no-tta")
    assert result.returncode == 0, result.stderr
    streams = _streams(tmp_path)
    axial_levels = {n.removeprefix("ax_t2_").upper() for n in phantom_truth["series"] if n.startswith("ax_t2_")}
    assert axial_levels and streams
    for level, used in streams.items():
        assert used == (["t2", "t1", "axial"] if level in axial_levels else ["t2", "t1"]), level


def test_the_default_grader_of_a_study_with_a_t1_is_the_t1_t2_model_when_the_folder_has_one(fused_models, tmp_path,
                                                                                              monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    for kind in ("grader", "localiser"):
        shutil.copy(default_model_path(kind), folder)
    monkeypatch.setenv("SPINECORE_MODELS", str(folder))
    study = make_phantom(PhantomSpec(seed=6, axial=False, n_slices=5))
    t2, t1 = study.get("sag_t2").to_series("t2"), study.get("sag_t1").to_series("t1")
    assert default_grader_path(t1=True) == folder / "grader.pt"  # no T1 + T2 model there: the T2 one
    assert analyse(t2, tta=False, t1=t1).unused_streams == ("t1",)
    shutil.copy(fused_models["t2", "t1"], folder / BUNDLED_T1T2)
    assert default_grader_path(t1=True) == folder / BUNDLED_T1T2 and default_grader_path() == folder / "grader.pt"
    with_t1 = analyse(t2, tta=False, t1=t1)
    assert with_t1.gradings.model_streams == ("t2", "t1") and with_t1.gradings.model_id == "fused-t2+t1"
    assert all(d.streams == ("t2", "t1") for d in with_t1.gradings.discs) and not with_t1.unused_streams
    assert analyse(t2, tta=False).gradings.model_streams == ("t2",)


def test_a_t1_taken_from_the_study_that_misses_the_discs_is_left_out_with_its_reason(fused_models):
    import dataclasses

    from spinecore.errors import StreamError
    from spinecore.geometry import Geometry

    study = make_phantom(PhantomSpec(seed=6, axial=False, n_slices=5))
    t2, t1 = study.get("sag_t2").to_series("t2"), study.get("sag_t1").to_series("t1")
    affine = t1.geometry.affine.copy()
    affine[:3, 1] *= -1.0  # the T1 flipped front to back: it shares the T2's space, none of its discs
    elsewhere = dataclasses.replace(t1, geometry=Geometry(affine, t1.geometry.shape))
    grader = Grader.load(fused_models["t2", "t1"])
    with pytest.raises(StreamError):
        analyse(t2, grader=grader, tta=False, t1=elsewhere)  # asked for: an error
    alone = analyse(t2, grader=grader, tta=False, t1=elsewhere, t1_optional=True)  # came with the study: left out
    assert alone.unused_streams == ("t1",) and "does not overlap" in alone.unused_reasons["t1"]
    assert alone.gradings.discs and all(d.streams == ("t2",) for d in alone.gradings.discs)
    note = unused_streams_note(alone.gradings.model_streams, alone.unused_streams, alone.unused_reasons)
    assert note.startswith(" (t1 not used: the T1 series does not overlap") and "\n" not in note


def test_bundled_t1_t2_grader_is_small_documented_and_reads_both_sagittal_streams():
    path = default_grader_path(t1=True)
    assert path.name == BUNDLED_T1T2 and path.stat().st_size < 20e6
    checkpoint = torch.load(path, weights_only=True)
    command = checkpoint["metadata"]["command"]
    assert command.startswith(("spinecore train ", "spinecore -v train ")) and "--streams t2,t1" in command
    assert command in (REPO / "Resources" / "Models" / "grader_t1t2.md").read_text()
    grader = Grader.load(t1=True)
    assert grader.streams == ("t2", "t1") and grader.scheme == SPIDER and torch.all(grader.net.temperature > 0)


@pytest.mark.skipif(not (REPO.parent / "shared" / "data" / "spider_midsag").is_dir(), reason="needs the shared SPIDER data")
def test_spider_manifests_pair_each_t2_with_the_patients_t1():
    from spinecore.data.spider import spider_manifests, validation_pairs

    rows = [r for part in spider_manifests(REPO.parent / "shared" / "data", SPIDER).values() for r in part]
    paired = [r for r in rows if r.scan_t1 is not None]
    assert len({r.patient for r in paired}) > 100
    assert all(r.scan.name == f"{r.patient}_t2.nii.gz" and r.scan_t1.name == f"{r.patient}_t1.nii.gz" for r in paired)
    assert all(r.scan_t1 is None for r in rows if not r.scan.name.endswith("_t2.nii.gz"))
    validation = spider_manifests(REPO.parent / "shared" / "data", SPIDER)["validation"]
    pairs = validation_pairs(validation)
    assert pairs["validation_pairs"] == [r for r in validation if r.scan_t1 is not None] and pairs["validation_pairs"]
    assert [(r.scan, r.level, r.labels) for r in pairs["validation_pairs_t2_only"]] == \
        [(r.scan, r.level, r.labels) for r in pairs["validation_pairs"]]
    assert all(r.scan_t1 is None for r in pairs["validation_pairs_t2_only"])
