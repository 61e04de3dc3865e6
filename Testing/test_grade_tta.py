"""54-view test-time augmentation: the views and the voxels they show."""
import numpy as np
import torch

from spinecore.grade.tta import CENTRE_VIEW, VIEWS, View, make_views, views_for


def shown_voxel(view: View, index, n_slices: int) -> tuple:
    """The volume index a view index ``(slice, row, col)`` shows (the module docstring's formula)."""
    s, r, c = index
    return ((n_slices - 1 - s if view.flip else s) + view.slice_shift, r + view.rows, c + view.cols)


def test_54_distinct_views_including_the_identity():
    assert len(VIEWS) == 54 and len(set(VIEWS)) == 54 and CENTRE_VIEW in VIEWS
    x = torch.rand(2, 9, 112, 224)
    views = make_views(x)
    assert views.shape == (2, 54, 9, 112, 224)
    assert torch.equal(views[:, VIEWS.index(CENTRE_VIEW)], x)


def test_views_map_back_to_the_voxels_they_show():
    volume = torch.zeros(1, 9, 112, 224)
    markers = [(4, 56, 112), (2, 30, 60), (7, 90, 200)]
    for n, (s, r, c) in enumerate(markers, start=1):
        volume[0, s, r, c] = n
    views = make_views(volume)[0]
    for v, view in zip(views, VIEWS):
        for n, marker in enumerate(markers, start=1):
            found = np.argwhere(v.numpy() == n)
            if len(found):  # the marker may be shifted out of the window
                assert shown_voxel(view, found[0], 9) == marker


def test_view_content_is_a_shift_and_reflection():
    x = torch.rand(1, 9, 112, 224)
    view = next(v for v in VIEWS if v.rows == 16 and v.cols == -16 and v.flip and v.slice_shift == 1)
    out = make_views(x, (view,))[0, 0]
    # view[s', r, c] = x[8 - s' + 1, r + 16, c - 16]
    assert torch.equal(out[3, 10, 50], x[0, 6, 26, 34])
    assert torch.all(out[0] == 0)  # slice 9 does not exist


def test_single_slice_volumes_are_not_slid():
    volume = torch.zeros(9, 112, 224)
    volume[4] = 1.0
    assert len(views_for(volume)) == 18 and all(v.slice_shift == 0 for v in views_for(volume))
    volume[5] = 1.0
    assert views_for(volume) == VIEWS
