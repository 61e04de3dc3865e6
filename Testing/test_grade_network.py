"""The multi-task CNN: 2-D and 3-D forms, branch points, the thesis, wide and compact sizes."""
import pytest
import torch

from spinecore.grade import SPIDER, GradingNet, NetConfig, compact, thesis
from spinecore.grade.network import LAYERS, wide

N_CLASSES = [t.n_classes for t in SPIDER.tasks]


@pytest.mark.parametrize("dims", [2, 3])
def test_outputs_one_head_per_task(dims):
    net = GradingNet(compact(N_CLASSES, dims)).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 9, 112, 224))
    assert [o.shape for o in out] == [(2, n) for n in N_CLASSES]
    probabilities = net.probabilities(out)
    assert all(torch.allclose(p.sum(1), torch.ones(2)) for p in probabilities)


@pytest.mark.parametrize("branch", LAYERS)
def test_branch_point_decides_what_is_shared(branch):
    net = GradingNet(NetConfig(tuple(N_CLASSES), branch=branch, widths=(4, 4, 4, 4, 4), fc=8))
    shared = sum(p.numel() for p in net.trunk.parameters())
    per_task = [sum(p.numel() for p in h.parameters()) for h in net.heads]
    assert len(net.trunk) == LAYERS.index(branch) + 1
    # every head holds the layers after the branch point plus its own FC8
    fc8 = [8 * n + n for n in N_CLASSES]
    assert len({pt - f for pt, f in zip(per_task, fc8)}) == 1 and shared > 0


def test_3d_conv4_collapses_the_slice_axis():
    net = GradingNet(compact(N_CLASSES, 3))
    x = torch.rand(1, 1, 9, 112, 224)
    for block in net.trunk[:3]:
        x = block(x)
    assert x.shape[2] == 9  # slice extent kept by the 3x kernels with padding
    assert net.trunk[3](x).dim() == 4  # Conv4's 9-slice kernel leaves a 2-D feature map


def test_sizes():
    compact_params = sum(p.numel() for p in GradingNet(compact(N_CLASSES)).parameters())
    wide_params = sum(p.numel() for p in GradingNet(wide(N_CLASSES)).parameters())
    assert 3 * compact_params < wide_params and wide_params * 4 < 20e6  # float32 weights under 20 MB
    with torch.device("meta"):  # the thesis net without allocating 1.7 GB
        thesis_params = sum(p.numel() for p in GradingNet(thesis([5, 4, 2, 2, 2, 2, 2, 2])).parameters())
    assert 420e6 < thesis_params < 432e6  # thesis 4.2.2.1: 426 M for eight tasks


def test_bad_config():
    with pytest.raises(ValueError, match="branch"):
        NetConfig((2,), branch="fc9")
