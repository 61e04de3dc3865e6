"""Training augmentation: reproducible, within its ranges, keeps empty slices empty."""
import torch

from spinecore.grade.augment import Augmentation, augment


def _volume():
    x = torch.zeros(4, 9, 112, 224)
    x[:, 2:7, 40:72, 60:164] = 0.5
    return x


def test_reproducible_for_a_seed():
    a = augment(_volume(), torch.Generator().manual_seed(3))
    b = augment(_volume(), torch.Generator().manual_seed(3))
    c = augment(_volume(), torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_identity_ranges_change_nothing():
    none = Augmentation(0.0, 0, 0, 0, (1.0, 1.0), 0.0, 0.0)
    x = _volume()
    assert torch.allclose(augment(x, torch.Generator().manual_seed(0), none), x, atol=1e-5)


def test_slices_shift_and_flip_but_content_survives():
    x = _volume()
    out = augment(x, torch.Generator().manual_seed(1))
    for volume in out:
        has_data = volume.flatten(1).abs().amax(1) > 0
        assert 3 <= int(has_data.sum()) <= 5  # 5 slices, up to 2 shifted out
        assert torch.all(volume[~has_data] == 0)
        assert volume[has_data].max() <= 0.6 + 1e-5  # 0.5 plus at most 0.1 intensity offset


def test_single_slice_stays_in_the_middle():
    x = torch.zeros(8, 9, 112, 224)
    x[:, 4, 40:72, 60:164] = 0.5
    out = augment(x, torch.Generator().manual_seed(2))
    assert torch.all(out[:, [0, 1, 2, 3, 5, 6, 7, 8]] == 0) and torch.all(out[:, 4].amax((1, 2)) > 0)
