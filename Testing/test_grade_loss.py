"""Multi-task class-balanced loss: missing labels are ignored, rare classes weigh more, ordered grades
can take soft ordinal targets."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spinecore.data.manifests import write_phantom_manifest
from spinecore.grade import GENODISC, Grader
from spinecore.grade.loss import MISSING, MultiTaskLoss, class_weights, soft_ordinal_targets

from conftest import run_cli


def test_class_weights_are_inverse_frequency():
    labels = np.array([[0, 1], [0, MISSING], [0, 1], [1, 0]])
    w = class_weights(labels, (2, 2))
    assert w[0][1] / w[0][0] == pytest.approx(3.0)  # 3 zeros, 1 one
    assert w[1][0] / w[1][1] == pytest.approx(2.0)  # the MISSING row is not counted


def test_weights_are_capped_and_unseen_classes_get_zero():
    labels = np.array([[0]] * 100 + [[1]])
    w = class_weights(labels, (3,))[0]
    assert w[1] / w[0] == pytest.approx(20.0) and w[2] == 0


def test_missing_labels_are_ignored():
    torch.manual_seed(0)
    logits = [torch.randn(6, 5, requires_grad=True), torch.randn(6, 2, requires_grad=True)]
    labels = torch.tensor([[0, 1], [1, MISSING], [2, 0], [MISSING, 1], [4, MISSING], [3, 0]])
    criterion = MultiTaskLoss([torch.ones(5), torch.tensor([1.0, 3.0])])
    total, per_task = criterion(logits, labels)
    # what the loss must equal: cross-entropy over the graded samples only
    graded0 = labels[:, 0] != MISSING
    graded1 = labels[:, 1] != MISSING
    expected1 = F.cross_entropy(logits[1][graded1], labels[graded1, 1], weight=torch.tensor([1.0, 3.0]))
    assert per_task[0] == pytest.approx(F.cross_entropy(logits[0][graded0], labels[graded0, 0]).item())
    assert per_task[1] == pytest.approx(expected1.item())
    total.backward()
    assert torch.all(logits[0].grad[~graded0] == 0) and torch.all(logits[1].grad[~graded1] == 0)
    assert torch.all(logits[0].grad[graded0].abs().sum(1) > 0)


def test_task_without_labels_adds_nothing():
    logits = [torch.randn(3, 2), torch.randn(3, 2)]
    labels = torch.tensor([[0, MISSING], [1, MISSING], [1, MISSING]])
    total, per_task = MultiTaskLoss([torch.ones(2), torch.ones(2)])(logits, labels)
    assert per_task[1] == 0 and total == pytest.approx(per_task[0].item())


def test_soft_ordinal_targets_put_most_mass_on_the_grade_and_fall_off_with_distance():
    targets = soft_ordinal_targets(torch.tensor([0, 2, 4]), 5)
    assert torch.allclose(targets.sum(dim=1), torch.ones(3))
    assert targets.argmax(dim=1).tolist() == [0, 2, 4]
    middle = targets[1]
    assert middle[1] == pytest.approx(middle[3].item()) and middle[2] > middle[1] > middle[0] > 0
    assert middle[2] == pytest.approx(0.78, abs=0.01)


def test_ordinal_loss_charges_a_far_grade_more_than_a_near_one_and_keeps_the_class_weights():
    weights = torch.tensor([1.0, 1.0, 2.0, 1.0, 4.0])
    criterion = MultiTaskLoss([weights], ordinal=[True])
    near, far = torch.full((1, 5), -5.0), torch.full((1, 5), -5.0)
    near[0, 3], far[0, 0] = 5.0, 5.0  # grade 3 and grade 0 predicted for a true grade 2
    truth = torch.tensor([[2]])
    assert criterion([near], truth)[0] < criterion([far], truth)[0]
    plain = MultiTaskLoss([weights])
    assert plain([near], truth)[0] == pytest.approx(plain([far], truth)[0].item(), rel=1e-4)  # one-hot: equal
    # the class weights enter as in the one-hot loss: per sample by its true class, normalised
    logits = torch.randn(4, 5)
    labels = torch.tensor([[0], [2], [4], [MISSING]])
    soft = soft_ordinal_targets(labels[:3, 0], 5)
    nll = -(soft * F.log_softmax(logits[:3], dim=1)).sum(dim=1)
    expected = (weights[labels[:3, 0]] * nll).sum() / weights[labels[:3, 0]].sum()
    assert criterion([logits], labels)[1][0] == pytest.approx(expected.item())


def test_train_with_ordinal_targets_records_them_in_the_model(tmp_path):
    manifest = write_phantom_manifest(tmp_path, (43,), GENODISC, n_slices=3)
    result = run_cli("train", "--manifest", manifest, "--scheme", "genodisc", "--out", tmp_path / "m.pt", "--steps", 2,
                     "--ordinal-targets")
    assert result.returncode == 0, result.stderr
    metadata = Grader.load(tmp_path / "m.pt").metadata
    assert metadata["settings"]["ordinal_targets"] is True and "-ordinal-" in metadata["model_id"]
