"""Saliency arithmetic pinned on a tiny network computed by hand, and the methods on a real grader."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from spinecore.grade import SPIDER, GradingNet, compact
from spinecore.saliency import Method, backprop, excitation, guided, hotspots


def _tiny():
    """x (2) → W1 → ReLU → W2 → (2); W1 = [[1, -1], [2, 1]], W2 = [[1, -2], [-1, 1]], no biases.
    For x = (1, 0.5): hidden = (0.5, 2.5), output = (-4.5, 2.0)."""
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -1.0], [2.0, 1.0]]))
        net[2].weight.copy_(torch.tensor([[1.0, -2.0], [-1.0, 1.0]]))
    return net, torch.tensor([[1.0, 0.5]])


def _first_output(out):
    return out[:, 0]


def test_backprop_by_hand():
    net, x = _tiny()
    # d out0 / dx = W2[0] · W1 (both hidden units active) = (1 - 4, -1 - 2)
    assert backprop(net, x, [_first_output])[0].tolist() == [[3.0, 3.0]]


def test_guided_backprop_by_hand():
    net, x = _tiny()
    # the ReLU passes back only the positive part of (1, -2): (1, 0) · W1 = (1, -1)
    assert guided(net, x, [_first_output])[0].tolist() == [[1.0, 1.0]]


def test_contrastive_excitation_by_hand():
    net, x = _tiny()
    # target unit: W2⁺ = (1, 0), W2⁺h = 0.5 → P(h) = h ⊙ (1, 0) / 0.5 = (1, 0)
    #   W1⁺ = [[1, 0], [2, 1]], W1⁺x = (1, 2.5) → P(x) = x ⊙ W1⁺ᵀ (1/1, 0) = (1, 0)
    # dual unit: (−W2)⁺ = (0, 2), (−W2)⁺h = 5 → P(h) = (0, 1); P(x) = x ⊙ W1⁺ᵀ (0, 1/2.5) = (0.8, 0.2)
    # contrast: (1 − 0.8, 0 − 0.2) → positive part (0.2, 0)
    result = excitation(net, x, [_first_output], tops=[net[2]])[0]
    assert result[0].tolist() == pytest.approx([0.2, 0.0], abs=1e-5)  # EPS = 1e-6 in each division


def test_several_scores_match_one_at_a_time():
    torch.manual_seed(0)
    net = GradingNet(compact([t.n_classes for t in SPIDER.tasks])).eval()
    x = torch.rand(2, 9, 112, 224)
    scores = [lambda o: o[0][:, 3], lambda o: o[2][:, 1]]
    together = excitation(net, x, scores, tops=[net.heads[0][-1], net.heads[2][-1]])
    alone = excitation(net, x, scores[1:], tops=[net.heads[2][-1]])
    assert torch.allclose(together[1], alone[0], atol=1e-6)
    for method in (backprop, guided):
        both = method(net, x, scores)
        assert torch.allclose(both[0], method(net, x, scores[:1])[0])
    # the model itself is untouched: same outputs before and after
    with torch.no_grad():
        assert torch.equal(net(x)[0], net(x)[0])


def test_hotspots_follow_the_evidence_back_through_the_augmentations():
    """A net that averages intensity: its excitation map is proportional to the input, so the
    inverse-mapped average over augmentations must land on the bright blob of the original volume."""
    class Brightness(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(9, 1, 1, bias=False)
            self.pool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(1, 2, bias=False)
            with torch.no_grad():
                self.conv.weight.fill_(1.0)
                self.fc.weight.copy_(torch.tensor([[1.0], [-1.0]]))
            self.heads = [[self.fc]]
            self.config = SimpleNamespace(dims=2)

        def forward(self, x):
            return [self.fc(torch.relu(self.pool(self.conv(x))).flatten(1))]

    volume = np.full((9, 112, 224), 0.1, np.float32)
    volume[3:6, 20:30, 150:170] = 1.0
    net = Brightness().eval()
    maps = hotspots(net, volume, {0: 0}, Method.EXCITATION, augmentations=30, batch=10)[0]
    s, r, c = np.unravel_index(np.argmax(maps), maps.shape)
    assert 3 <= s <= 5 and 20 <= r < 30 and 150 <= c < 170
    assert maps[3:6, 20:30, 150:170].mean() > 5 * maps[:, 60:, :100].mean()
    for method in (Method.BACKPROP, Method.GUIDED):
        other = hotspots(net, volume, {0: 0}, method, augmentations=4, batch=2)[0]
        assert other.shape == volume.shape and other.min() >= 0 and other.max() == pytest.approx(1.0)
