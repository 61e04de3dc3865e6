"""Evidence hotspots of a grading model on one disc volume, averaged over random augmentations
(thesis 5.2): each augmented copy's saliency map is mapped back through the inverse of its
augmentation before averaging. Copies are processed in batches."""
from __future__ import annotations

import numpy as np
from scipy import ndimage
import torch
import torch.nn.functional as F

from spinecore.grade.augment import Augmentation, draw, invert
from spinecore.grade.augment import apply as apply_transforms
from spinecore.grade.network import GradingNet
from spinecore.saliency.methods import backprop, excitation, guided
from spinecore.saliency.settings import DEFAULT_AUGMENTATIONS, DEFAULT_METHOD, Method

SMOOTHING_PX = 2.0


def _one_batch(net: GradingNet, x: torch.Tensor, classes: dict[int, int], method: Method) -> list[torch.Tensor]:
    scores = [lambda outputs, t=task, c=cls: outputs[t][:, c] for task, cls in classes.items()]
    if method is Method.BACKPROP:
        return backprop(net, x, scores)
    if method is Method.GUIDED:
        return guided(net, x, scores)
    tops = [net.heads[task][-1] for task in classes]
    if net.config.dims == 2:
        return excitation(net, x, scores, tops)
    # 3-D: stop at Conv1 (thesis 5.1.3), whose output keeps the slice axis at half resolution
    maps = excitation(net, x, scores, tops, stop_at=net.trunk[0][0])
    return [F.interpolate(m, size=x.shape[2:], mode="bilinear", align_corners=False) for m in maps]


def hotspots(net: GradingNet, volume: np.ndarray, classes: dict[int, int], method: Method = DEFAULT_METHOD,
             augmentations: int = DEFAULT_AUGMENTATIONS, seed: int = 0, batch: int = 50) -> dict[int, np.ndarray]:
    """Hotspot maps ``(9, 112, 224)`` of ``volume`` for each ``{task index: class index}``: the
    mean of ``augmentations`` inverse-mapped saliency maps (1 = the plain map, no augmentation),
    smoothed in-plane (Gaussian, :data:`SMOOTHING_PX`: gradient maps are speckled at pixel scale)
    and scaled so its 99.9th percentile is 1, clipped to [0, 1] (all zero when the model shows
    no evidence)."""
    net.eval()
    x = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None]
    generator = torch.Generator().manual_seed(seed)
    sums = {t: torch.zeros(x.shape[1:]) for t in classes}
    done = 0
    while done < augmentations:
        n = min(batch, augmentations - done)
        copies = x.expand(n, *x.shape[1:])
        if augmentations == 1:
            transformed, transforms = copies, None
        else:
            transforms = draw(copies, generator, Augmentation())
            transformed = apply_transforms(copies, transforms)
        for task, maps in zip(classes, _one_batch(net, transformed, classes, Method(method))):
            sums[task] += (maps if transforms is None else invert(maps, transforms)).sum(0)
        done += n
    out = {}
    for task, total in sums.items():
        smooth = ndimage.gaussian_filter(total.numpy(), (0, SMOOTHING_PX, SMOOTHING_PX))
        top = float(np.percentile(smooth, 99.9))
        out[task] = np.clip(smooth / top, 0.0, 1.0).astype(np.float32) if top > 0 else smooth.astype(np.float32)
    return out


def scan_heatmap(volumes, maps: dict[str, dict[str, np.ndarray]], task: str,
                 scan_shape: tuple[int, int, int]) -> np.ndarray:
    """The hotspots of ``task`` for every disc in ``maps`` composed in the scan's voxel grid
    ``(slice, row, column)`` (float32, 0–1; where two disc volumes overlap the larger value wins)."""
    out = np.zeros(scan_shape, np.float32)
    for volume in volumes:
        if task in maps.get(volume.level, {}):
            np.maximum(out, volume.to_scan_grid(maps[volume.level][task], scan_shape), out=out)
    return out
