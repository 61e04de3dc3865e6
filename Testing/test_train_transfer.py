"""A grader started from a pretrained Siamese tower (thesis 7.4.2): the convolutions copied, kept
fixed with --freeze-conv, and one-line errors when the tower does not fit."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from spinecore.data.manifests import DiscSet, write_phantom_manifest
from spinecore.errors import SpineCoreError
from spinecore.grade import GENODISC
from spinecore.grade.grader import load_grader_net
from spinecore.grade.siamese import Kind
from spinecore.models import save_model
from spinecore.train.grading import GradingTraining, network_config, start_net, train_grader
from spinecore.train.siamese import SiameseTraining, siamese_model, train_siamese
from spinecore.train.transfer import convolutions, pretrained

from conftest import run_cli
from test_grade_siamese import tiny_set


@pytest.fixture(scope="module")
def tower(tmp_path_factory):
    """A Siamese model file after two training steps (so its batch statistics are not the defaults)."""
    rng = np.random.default_rng(0)
    sets = {kind: tiny_set(kind, rng) for kind in Kind}
    settings = SiameseTraining(seed=1, steps=2, pairs_per_step=2)
    net = train_siamese(sets, settings)
    path = tmp_path_factory.mktemp("siamese") / "siamese.pt"
    save_model(path, siamese_model(net, sets, settings, "test", threshold=0.5, threshold_note="test"))
    return path, net


def random_discs(n: int = 8) -> DiscSet:
    rng = np.random.default_rng(2)
    labels = np.stack([rng.integers(0, t.n_classes, n) for t in GENODISC.tasks], 1)
    return DiscSet(rng.integers(0, 255, (n, 9, 112, 224), dtype=np.uint8), labels, [f"p{i // 2}" for i in range(n)],
                   ["L4-L5", "L5-S1"] * (n // 2), ["scan"] * n)


def same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("streams, fusion", [(("t2",), None), (("t2", "t1"), "fc8-sum")])
def test_the_grader_starts_from_the_towers_convolutions(tower, streams, fusion):
    path, siamese = tower
    net, record = start_net(GENODISC, GradingTraining(init=str(path), streams=streams, fusion=fusion))
    assert same_state(convolutions(net), siamese.convolutions)
    assert record["frozen"] is False and record["layers"] == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    scratch, none = start_net(GENODISC, GradingTraining(streams=streams, fusion=fusion))
    assert none is None and not same_state(convolutions(scratch), siamese.convolutions)


@pytest.mark.parametrize("freeze", [True, False])
def test_frozen_convolutions_stay_fixed_in_training_and_others_learn(tower, freeze):
    path, siamese = tower
    settings = GradingTraining(steps=3, batch_size=4, init=str(path), freeze_conv=freeze)
    net, record = train_grader(random_discs(), GENODISC, settings)
    assert record["frozen"] is freeze
    assert same_state(convolutions(net), siamese.convolutions) is freeze
    assert all(p.requires_grad is not freeze for p in convolutions(net).parameters())
    start, _ = start_net(GENODISC, settings)
    assert not torch.equal(net.heads[0][-1].weight, start.heads[0][-1].weight)  # FC8 learns either way


def test_a_tower_that_does_not_fit_is_a_one_line_error_naming_the_file(tower, tmp_path):
    path, _ = tower
    for settings, reason in ((GradingTraining(preset="thesis"), "widths 16,32,64,64,64\\) do not fit"),
                             (GradingTraining(dims=3), "2-D, 9 slices.*do not fit.*3-D"),
                             (GradingTraining(branch="conv3"), "branches at conv3")):
        with pytest.raises(SpineCoreError, match=reason) as info:
            pretrained(path, network_config(GENODISC, settings))
        assert str(path) in str(info.value)


def test_train_init_freeze_conv_command(tower, tmp_path):
    """`spinecore train --init --freeze-conv` writes a grader whose convolutions are the tower's and
    records the transfer; wrong combinations and a grader file given as the tower are one-line errors."""
    path, siamese = tower
    manifest = write_phantom_manifest(tmp_path, (11,), GENODISC, n_slices=5)
    common = ("train", "--manifest", manifest, "--scheme", "genodisc", "--steps", 2)
    result = run_cli(*common, "--out", tmp_path / "g.pt", "--init", path, "--freeze-conv")
    assert result.returncode == 0, result.stderr
    net, _, metadata = load_grader_net(tmp_path / "g.pt")
    assert same_state(convolutions(net), siamese.convolutions)
    assert metadata["transfer"]["frozen"] is True and metadata["settings"]["freeze_conv"] is True
    assert "-siamese-frozen-" in metadata["model_id"]
    for extra, reason in ((("--freeze-conv",), "--freeze-conv goes with --init"),
                          (("--init", tmp_path / "g.pt"), "g.pt: a 'grader' model, not a siamese model"),
                          (("--init", path, "--preset", "thesis"), "siamese.pt: its convolutions .* do not fit")):
        result = run_cli(*common, "--out", tmp_path / "bad.pt", *extra)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("spinecore: error: ") and re.search(reason, result.stderr)
        assert not (tmp_path / "bad.pt").exists()
