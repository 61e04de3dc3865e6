"""Multi-task class-balanced loss: missing labels are ignored, rare classes weigh more."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spinecore.grade.loss import MISSING, MultiTaskLoss, class_weights


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
