"""Localiser training data, loss, augmentation and evaluation."""

import numpy as np
import pytest
import torch

from conftest import REPO
from spinecore.localise import Localiser
from spinecore.data.references import (IGNORE, _discs_between, phantom_scans, random_narrowing, read_spider_slab,
                                       to_training)
from spinecore.evaluate.localisation import score_scan, summarise
from spinecore.levels import DISCS
from spinecore.phantom import PhantomSpec
from spinecore.phantom.anatomy import NARROWING_HEIGHT_FACTOR
from spinecore.phantom.study import _patient
from spinecore.train import localisation
from spinecore.train.localisation import LocaliserTraining, augment, masked_loss, train_localiser

SHARED = REPO.parent / "shared" / "data"


def test_loss_ignores_unknown_voxels():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 16, 16)
    targets = (torch.rand(2, 3, 16, 16) > 0.5).float()
    targets[:, 2] = IGNORE            # a channel nobody labelled
    targets[0, 0, :8] = IGNORE         # and half of another
    changed = logits.clone()
    changed[:, 2] = 50.0
    changed[0, 0, :8] = -50.0
    assert torch.isclose(masked_loss(logits, targets), masked_loss(changed, targets))
    wrong = logits.clone()
    wrong[0, 0, 8:] = -50.0 * (targets[0, 0, 8:] * 2 - 1)  # confidently wrong where known
    assert masked_loss(wrong, targets) > masked_loss(logits, targets) + 1


def test_edge_weight_makes_errors_at_label_edges_cost_more():
    targets = torch.zeros(1, 3, 16, 16)
    targets[:, 0, 4:12, 4:12] = 1
    targets[:, 1:] = IGNORE
    logits = 20.0 * (2 * targets - 1)  # confidently right everywhere
    at_edge, inside = logits.clone(), logits.clone()
    at_edge[0, 0, 4, 8] = -20.0    # the body's top row: its neighbourhood holds both labels
    inside[0, 0, 8, 8] = -20.0     # the body's centre
    assert torch.isclose(masked_loss(at_edge, targets), masked_loss(inside, targets))
    assert masked_loss(at_edge, targets, edge_weight=4.0) > 2 * masked_loss(inside, targets, edge_weight=4.0)
    assert torch.equal(masked_loss(logits, targets, edge_weight=0.0), masked_loss(logits, targets))
    unknown_changed = at_edge.clone()
    unknown_changed[:, 1:] = -at_edge[:, 1:]  # the unlabelled channels count for nothing, edges or not
    assert torch.isclose(masked_loss(at_edge, targets, 4.0), masked_loss(unknown_changed, targets, 4.0))


def test_augmentation_keeps_target_values():
    images = torch.rand(4, 1, 64, 48)
    targets = torch.zeros(4, 3, 64, 48)
    targets[:, 0, 20:40, 10:30] = 1
    targets[:, 1] = IGNORE
    out_images, out_targets = augment(images, targets, torch.Generator().manual_seed(1))
    assert out_images.shape == images.shape
    assert set(torch.unique(out_targets).tolist()) <= {0.0, 1.0, float(IGNORE)}
    assert torch.all(out_targets[:, 1][out_targets[:, 1] != 0] == IGNORE)


def test_discs_inferred_between_neighbouring_bodies():
    upper = np.zeros((1, 60, 40), dtype=bool)
    lower = np.zeros_like(upper)
    upper[0, 5:25, 10:30] = True
    lower[0, 33:53, 10:30] = True
    discs = _discs_between({"L4": upper, "L5": lower})
    disc = discs["L4-L5"][0]
    rows, cols = np.nonzero(disc)
    assert rows.min() >= 25 and rows.max() <= 32 and cols.min() >= 10 and cols.max() <= 29
    assert disc.sum() > 0.8 * 8 * 20


def test_phantom_reference_scores_perfectly_against_its_own_truth():
    scan = phantom_scans([21], contrasts=("sag_t2",))[0]
    training = to_training(scan)
    assert training.target.shape[1] == 3 and training.image.shape == training.target[:, 0].shape
    result = score_scan(scan, Localiser.load()(scan.series))
    summary = summarise([result])
    assert summary["level_accuracy"] == 1.0 and summary["disc_centres_inside"] >= 0.8
    assert summary["corners_within_2.8mm"] >= 0.85


def test_narrowed_phantoms_thin_each_disc_by_its_drawn_grade():
    seed = 24
    grades = {level: g["narrowing"] for level, g in random_narrowing(seed).items()}
    assert set(grades) == set(DISCS) and set(grades.values()) <= {0, 1, 2, 3} and 3 in grades.values()
    assert random_narrowing(seed) != random_narrowing(seed + 1)
    own = {level: g.narrowing for level, g in _patient(PhantomSpec(seed=seed)).grades.items()}
    plain, narrowed = (phantom_scans([seed], ("sag_t2",), narrowed=n)[0] for n in (False, True))
    for level, disc in narrowed.discs.items():
        expected = NARROWING_HEIGHT_FACTOR[grades[level]] / NARROWING_HEIGHT_FACTOR[own[level]]
        assert disc.sum() / plain.discs[level].sum() == pytest.approx(expected, rel=0.2), level


def test_training_takes_the_narrowed_phantoms_after_the_plain_ones(monkeypatch):
    monkeypatch.setattr(localisation, "real_scans", lambda root, split: [])
    settings = LocaliserTraining(steps=2, batch_size=2, phantoms=1, narrowed_phantoms=1, widths=(4, 8, 16, 32, 64))
    trained = train_localiser(REPO / "no-pack", settings, "spinecore train-localiser --narrowed-phantoms 1")
    first, second = localisation.PHANTOM_SEEDS, localisation.PHANTOM_SEEDS + 1
    assert trained.metadata["training_scans"] == [f"phantom_{first}_sag_t2", f"phantom_{first}_sag_t1",
                                                  f"phantom_{second}_sag_t2", f"phantom_{second}_sag_t1"]
    assert trained.metadata["training"]["narrowed_phantoms"] == 1
    assert all(torch.isfinite(p).all() for p in trained.network.parameters())


@pytest.mark.skipif(not (SHARED / "spider_space").is_dir(), reason="needs the shared real-data pack")
def test_spider_slab_levels_from_disc_instances():
    scan = read_spider_slab(SHARED / "spider_space", "7")
    assert "L5" in scan.bodies and "L5-S1" in scan.discs
    row = lambda mask: np.argwhere(mask)[:, 1].mean()  # noqa: E731
    assert row(scan.bodies["L4"]) < row(scan.discs["L4-L5"]) < row(scan.bodies["L5"]) < row(scan.discs["L5-S1"])
    # the sacrum is unlabelled in these masks: nothing below the L5-S1 disc is known
    below = np.argwhere(scan.unknown["body"])[:, 1]
    assert below.size and row(scan.discs["L5-S1"]) < np.percentile(below, 90)
