"""The networks' 2×2 max pooling gives exactly PyTorch's pooling values, and with a gradient wanted
it is PyTorch's pooling (one element of a tie gets the gradient, as in the models' training)."""
import pytest
import torch
import torch.nn.functional as F

from spinecore.pooling import Halve, halve


@pytest.mark.parametrize("shape", [(2, 3, 8, 12), (1, 4, 7, 9), (3, 1, 2, 3)])
def test_halve_equals_max_pool2d(shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    x[0, 0, :2, :2] = 0.5  # a tie
    x[-1, -1, -2:, -2:] = -float("inf")
    assert torch.equal(halve(x), F.max_pool2d(x, 2))  # floor mode: an odd last row/column dropped


def test_halve_equals_in_plane_max_pool3d():
    x = torch.relu(torch.randn(2, 4, 9, 14, 28, generator=torch.Generator().manual_seed(1)))
    assert torch.equal(Halve()(x), torch.nn.MaxPool3d((1, 2, 2))(x))


def test_halve_keeps_nan_like_max_pool2d():
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 2] = float("nan")
    assert torch.equal(halve(x).isnan(), F.max_pool2d(x, 2).isnan())
    assert int(halve(x).isnan().sum()) == 1


def test_gradient_reaches_each_block_maximum():
    x = torch.tensor([[[[1.0, 4.0, 0.0, -1.0], [2.0, 3.0, -2.0, -3.0]]]], requires_grad=True)
    halve(x).sum().backward()
    assert x.grad.tolist() == [[[[0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]]


@pytest.mark.parametrize("shape", [(1, 2, 4, 6), (1, 2, 3, 4, 6)])
def test_gradient_of_a_tie_goes_where_pytorch_sends_it(shape):
    x = torch.ones(shape, requires_grad=True)  # every block one big tie
    halve(x).sum().backward()
    reference = torch.ones(shape, requires_grad=True)
    pool = F.max_pool3d(reference, (1, 2, 2)) if len(shape) == 5 else F.max_pool2d(reference, 2)
    pool.sum().backward()
    assert torch.equal(x.grad, reference.grad) and int(x.grad.sum()) == x.grad[..., ::2, ::2].numel()
