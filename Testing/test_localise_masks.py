"""Body and disc masks drawn from the quadrilaterals, against the phantom's true label map."""
import numpy as np

from spinecore.localise import structure_masks
from spinecore.phantom import PhantomSpec, make_phantom
from spinecore.phantom.render import LABELS


def test_masks_from_the_true_quadrilaterals_match_the_phantom_labels():
    study = make_phantom(PhantomSpec(seed=5))
    masks = structure_masks(study.reference_spine())
    levels = [v["level"] for v in study.truth["vertebrae"]]
    discs = [f"{a}-{b}" for a, b in zip(levels[:-1], levels[1:])]
    assert list(masks) == [name for pair in zip(levels, [*discs, None]) for name in pair if name]
    assert not np.any(np.sum([m.astype(int) for m in masks.values()], axis=0) > 1)  # no voxel in two structures
    for name, mask in masks.items():
        true = study.labels == LABELS[name]
        dice = 2 * (mask & true).sum() / (mask.sum() + true.sum())
        assert dice > (0.9 if "-" not in name else 0.8), (name, dice)
