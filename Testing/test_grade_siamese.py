"""The Siamese network (thesis 7.3): shapes, the contrastive loss, model files, reproducible training."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spinecore.data.pairs import StructureSet, all_pairs
from spinecore.errors import ModelError
from spinecore.grade.siamese import (
    BODY_LEVELS,
    DISC_LEVELS,
    KIND,
    SIZE_DIMS,
    Kind,
    SiameseNet,
    contrastive_loss,
    load_siamese,
    pair_distance,
    siamese_config,
)
from spinecore.models import FORMAT, VERSION, save_model
from spinecore.train.siamese import SiameseTraining, siamese_model, train_siamese


def test_one_tower_embeds_bodies_and_discs_to_unit_vectors_and_predicts_their_levels():
    net = SiameseNet(siamese_config()).eval()
    bodies, discs = net.embed(torch.rand(2, 9, 224, 224), Kind.BODY), net.embed(torch.rand(3, 9, 112, 224), Kind.DISC)
    assert bodies.shape == (2, 128) and discs.shape == (3, 128)
    assert torch.allclose(torch.linalg.vector_norm(discs, dim=1), torch.ones(3), atol=1e-5)
    assert net.levels(net.features(torch.rand(2, 9, 224, 224), Kind.BODY), Kind.BODY).shape == (2, len(BODY_LEVELS)) == (2, 7)
    assert net.levels(net.features(torch.rand(3, 9, 112, 224), Kind.DISC), Kind.DISC).shape == (3, len(DISC_LEVELS)) == (3, 6)
    shared = {name for name, _ in net.convolutions.named_parameters()}
    assert shared and not any(name.startswith("convolutions") for name, _ in net.fully_connected.named_parameters())


def test_contrastive_loss_pulls_pairs_of_one_subject_together_and_pushes_others_past_the_margin():
    a = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    b = torch.tensor([[3.0, 4.0], [0.3, 0.4], [3.0, 4.0]])
    distance = pair_distance(a, b)
    assert torch.allclose(distance, torch.tensor([5.0, 0.5, 5.0]))
    # same: d² = 25; different, inside the margin 1: (1 - 0.5)² = 0.25; different, beyond it: 0
    loss = contrastive_loss(distance, torch.tensor([1, 0, 0]), margin=1.0)
    assert loss.item() == pytest.approx((25 + 0.25 + 0) / 3)


def tiny_set(kind: Kind, rng: np.random.Generator) -> StructureSet:
    """Three subjects × two sequences × two levels of random volumes."""
    shape = (9, 224, 224) if kind is Kind.BODY else (9, 112, 224)
    levels = BODY_LEVELS if kind is Kind.BODY else DISC_LEVELS
    rows = [(s, q, level) for s in "abc" for q in ("t1", "t2") for level in levels[-2:]]
    return StructureSet(kind, rng.integers(0, 255, (len(rows), *shape), dtype=np.uint8),
                        np.array([r[0] for r in rows]), np.array([f"{r[0]}_{r[1]}" for r in rows]),
                        np.array([r[1] for r in rows]), np.array([r[2] for r in rows]))


def test_training_is_reproducible_from_its_seed_and_its_model_file_loads_back(tmp_path):
    rng = np.random.default_rng(0)
    sets = {kind: tiny_set(kind, rng) for kind in Kind}
    settings = SiameseTraining(seed=3, steps=2, pairs_per_step=2)
    first, second = train_siamese(sets, settings), train_siamese(sets, settings)
    for (name, p), q in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(p, q), name
    path = tmp_path / "siamese.pt"
    first.references = torch.rand(len(BODY_LEVELS), 5, first.config.fc + SIZE_DIMS)
    save_model(path, siamese_model(first, sets, settings, "spinecore pretrain ...", threshold=0.4, threshold_note="test"))
    net, metadata = load_siamese(path)
    assert metadata["same_subject_below"] == 0.4 and metadata["train"]["body"]["subjects"] == 3
    assert torch.equal(net.references, first.references)
    x = torch.rand(2, 9, 112, 224)
    assert torch.allclose(net.embed(x, Kind.DISC), first.embed(x, Kind.DISC))
    # its tower, kept as it is (0 steps) or trained on from there
    kept = train_siamese(sets, SiameseTraining(seed=3, steps=0, init=str(path)))
    assert all(torch.equal(p, q) for p, q in zip(kept.parameters(), net.parameters()))
    trained_on = train_siamese(sets, SiameseTraining(seed=3, steps=2, pairs_per_step=2, init=str(path)))
    fresh = train_siamese(sets, SiameseTraining(seed=3, steps=2, pairs_per_step=2))
    assert not torch.allclose(trained_on.embed(x, Kind.DISC), fresh.embed(x, Kind.DISC))
    (tmp_path / "not.pt").write_bytes(b"nothing")
    with pytest.raises(ModelError, match="not.pt"):
        load_siamese(tmp_path / "not.pt")


def patterned_set(kind: Kind, rng: np.random.Generator) -> StructureSet:
    """As :func:`tiny_set`, each subject's level a coarse random pattern of its own, its two sequences
    the pattern with noise of their own."""
    data = tiny_set(kind, rng)
    for subject in "abc":
        for level in set(data.levels.tolist()):
            rows = np.flatnonzero((data.subjects == subject) & (data.levels == level))
            pattern = np.kron(rng.random((9, 7, 7)), np.ones((1, data.volumes.shape[2] // 7, 32)))
            for row in rows:
                noisy = pattern + 0.1 * rng.standard_normal(pattern.shape)
                data.volumes[row] = np.clip(noisy * 255, 0, 255).astype(np.uint8)
    return data


def test_the_head_stage_trains_the_heads_on_the_frozen_convolutions_reproducibly():
    rng = np.random.default_rng(0)
    sets = {kind: patterned_set(kind, rng) for kind in Kind}
    settings = SiameseTraining(seed=3, steps=0, head_steps=40, head_pairs_per_step=32, head_learning_rate=1e-3)
    before = train_siamese(sets, SiameseTraining(seed=3, steps=0))  # the seeded tower, untrained
    after, again = train_siamese(sets, settings), train_siamese(sets, settings)
    assert all(torch.equal(p, q) for p, q in zip(after.state_dict().values(), again.state_dict().values()))
    assert all(torch.equal(p, q) for p, q in zip(after.convolutions.parameters(), before.convolutions.parameters()))
    for kind in Kind:
        for module in ("fully_connected", "level_heads"):
            trained, untrained = (getattr(net, module)[kind.value].parameters() for net in (after, before))
            assert not any(torch.equal(p, q) for p, q in zip(trained, untrained)), (kind, module)
        # one subject's pairs drawn together, relative to the pairs of two subjects
        pairs = all_pairs(sets[kind])
        volumes = torch.from_numpy(sets[kind].float_volumes(slice(None)))

        def separation(net: SiameseNet) -> float:
            with torch.no_grad():
                embedding = net.embed(volumes, kind)
            distance = pair_distance(embedding[pairs.first], embedding[pairs.second])
            return (distance[~pairs.same].mean() / distance[pairs.same].mean()).item()

        assert separation(after) > 2 * separation(before), kind


def test_a_model_without_usable_reference_scans_loads_for_its_tower_and_a_damaged_one_is_refused(tmp_path):
    from spinecore.errors import SpineCoreError
    from spinecore.grade.identity import body_vector, identity, reference_distances

    checkpoint = {"format": FORMAT, "kind": KIND, "version": VERSION, "config": {"net": siamese_config().to_dict()},
                  "metadata": {"same_subject_below": 0.0}}
    state = SiameseNet(siamese_config()).state_dict()
    older = {k: v for k, v in state.items() if k != "references"}  # saved before reference scans were kept
    torch.save({**checkpoint, "state_dict": older}, tmp_path / "older.pt")
    # and one whose references hold embeddings without the bodies' sizes: dropped, not misread
    without_sizes = {**older, "references": torch.rand(len(BODY_LEVELS), 5, siamese_config().fc)}
    torch.save({**checkpoint, "state_dict": without_sizes}, tmp_path / "no_sizes.pt")
    bodies = {"L4": body_vector(torch.zeros(siamese_config().fc), (28.0, 40.0))}
    for name in ("older.pt", "no_sizes.pt"):
        net, _ = load_siamese(tmp_path / name)
        assert net.references.shape == (len(BODY_LEVELS), 0, net.config.fc + SIZE_DIMS)
        with pytest.raises(SpineCoreError, match="too few reference scans"):
            identity(bodies, bodies, ["L4"], *[reference_distances(net.references, bodies)] * 2)
    for damaged in ([1.0], torch.zeros(len(BODY_LEVELS), 3), torch.zeros(len(BODY_LEVELS), 3, net.config.fc + 1)):
        torch.save({**checkpoint, "state_dict": {**older, "references": damaged}}, tmp_path / "damaged.pt")
        with pytest.raises(ModelError, match="damaged.pt: Siamese model file is damaged"):
            load_siamese(tmp_path / "damaged.pt")


def test_random_contrast_remaps_chosen_volumes_through_a_piecewise_linear_curve_and_keeps_the_background():
    from spinecore.train.siamese import CONTRAST_KNOTS, random_contrast

    grey = torch.linspace(0.0, 1.0, 101)
    x = torch.stack([grey, grey])[:, None, None, :]  # two volumes holding every grey level, 0 = background
    curve = random_contrast(x, torch.Generator().manual_seed(1), share=1.0)
    assert curve[:, 0, 0, 0].eq(0).all()
    knots = curve[0, 0, 0, :: 100 // (CONTRAST_KNOTS - 1)]
    # straight between the knots, and each volume its own curve
    between = (grey[25:51] - 0.25) * 4  # from the second knot to the third
    assert torch.allclose(curve[0, 0, 0, 25:51], torch.lerp(knots[1].expand(26), knots[2], between), atol=1e-5)
    assert not torch.allclose(curve[0], curve[1]) and 0 <= curve.min() and curve.max() <= 1
    assert torch.equal(random_contrast(x, torch.Generator().manual_seed(1), share=0.0), x)
