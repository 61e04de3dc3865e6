"""Evidence hotspots of a grading model on one disc, averaged over random augmentations (thesis
5.2): each augmented copy's saliency map is mapped back through the inverse of its augmentation
before averaging. Copies are processed in batches.

A multi-stream model (:class:`~spinecore.grade.fusion.FusionNet`) gets one map per stream it is
given: the saliency of the fused prediction with respect to that stream's volume (thesis 6.1.2).
The sagittal streams share one augmentation draw per copy (in register, as in training), the
axial stream takes its own (:data:`~spinecore.grade.augment.AXIAL`). A single-stream model is the
case of one stream, ``t2``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from spinecore.grade.augment import AXIAL, Augmentation, draw, invert
from spinecore.grade.augment import apply as apply_transforms
from spinecore.grade.fusion import FusionNet
from spinecore.grade.network import GradingNet
from spinecore.saliency.methods import backprop, excitation, guided
from spinecore.saliency.settings import DEFAULT_AUGMENTATIONS, DEFAULT_METHOD, Method
from spinecore.streams import SAGITTAL

SMOOTHING_PX = 2.0


def _excitation(net: GradingNet | FusionNet, x: dict[str, torch.Tensor], scores,
                tasks: list[int]) -> list[dict[str, torch.Tensor]]:
    """Excitation maps per stream: at the input of a 2-D tower; for a 3-D sagittal tower at the
    output of its Conv1 (thesis 5.1.3: the slice axis kept, in-plane at half resolution), resized
    to the input."""
    fused = isinstance(net, FusionNet)
    tops = [h[task][-1] for h in (net.heads.values() if fused else [net.heads]) for task in tasks]
    three_d = (net.dims["sagittal"] if fused else net.config.dims) == 3
    stop_at = (net.towers["sagittal"] if fused else net.trunk)[0][0] if three_d else None
    # the streams through the 3-D tower, in the order it runs them (a missing, all-zero stream skips it)
    stopped = [s for s in (net.streams if fused else ("t2",)) if s in SAGITTAL and s in x and bool(x[s].any())
               ] if three_d else []
    maps = (excitation(net, x, scores, tops, stop_at, stopped) if fused
            else [{"t2": m} for m in excitation(net, x["t2"], scores, tops, stop_at)])
    return [{s: F.interpolate(m, size=x[s].shape[2:], mode="bilinear", align_corners=False) if s in stopped else m
             for s, m in per_score.items()} for per_score in maps]


def _one_batch(net: GradingNet | FusionNet, x: dict[str, torch.Tensor], classes: dict[int, int],
               method: Method) -> list[dict[str, torch.Tensor]]:
    """Per task of ``classes``, the saliency maps of the batch ``x`` (``stream → (N, slices, rows,
    columns)``) by stream."""
    scores = [lambda outputs, t=task, c=cls: outputs[t][:, c] for task, cls in classes.items()]
    if method is Method.EXCITATION:
        return _excitation(net, x, scores, list(classes))
    fused = isinstance(net, FusionNet)
    found = (backprop if method is Method.BACKPROP else guided)(net, x if fused else x["t2"], scores)
    return found if fused else [{"t2": m} for m in found]


def _augmented(x: dict[str, torch.Tensor], generator: torch.Generator) -> tuple[dict[str, torch.Tensor], dict]:
    """Random augmentations of the copies ``x``: one draw for the sagittal streams together, one for the axial."""
    sagittal = draw(x["t2"], generator, Augmentation())
    transforms = {s: sagittal if s in SAGITTAL else draw(v, generator, AXIAL) for s, v in x.items()}
    return {s: apply_transforms(v, transforms[s]) for s, v in x.items()}, transforms


def _scaled(total: torch.Tensor) -> np.ndarray:
    """Smoothed in-plane, scaled so the 99.9th percentile is 1, clipped to [0, 1] (all zero without evidence)."""
    smooth = ndimage.gaussian_filter(total.numpy(), (0, SMOOTHING_PX, SMOOTHING_PX))
    top = float(np.percentile(smooth, 99.9))
    return np.clip(smooth / top, 0.0, 1.0).astype(np.float32) if top > 0 else smooth.astype(np.float32)


def stream_hotspots(net: GradingNet | FusionNet, volumes: dict[str, np.ndarray], classes: dict[int, int],
                    method: Method = DEFAULT_METHOD, augmentations: int = DEFAULT_AUGMENTATIONS, seed: int = 0,
                    batch: int = 50) -> dict[str, dict[int, np.ndarray]]:
    """Hotspot maps ``maps[stream][task]`` of one disc's stream ``volumes`` (``stream → (slices, rows,
    columns)``, e.g. ``(9, 112, 224)`` for ``t2``/``t1``, ``(3, 224, 224)`` for ``axial``; a stream the
    disc lacks is left out and gets no map) for each ``{task index: class index}``, each of its
    volume's shape: the mean of ``augmentations`` inverse-mapped saliency maps (1 = the plain map, no
    augmentation), smoothed in-plane (Gaussian, :data:`SMOOTHING_PX`: gradient maps are speckled at
    pixel scale) and scaled so its 99.9th percentile is 1, clipped to [0, 1] (all zero when the
    model shows no evidence in that stream)."""
    net.eval()
    x = {s: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))[None] for s, v in volumes.items()}
    generator = torch.Generator().manual_seed(seed)
    sums = {s: {t: torch.zeros(v.shape[1:]) for t in classes} for s, v in x.items()}
    done = 0
    while done < augmentations:
        n = min(batch, augmentations - done)
        copies = {s: v.expand(n, *v.shape[1:]) for s, v in x.items()}
        transformed, transforms = (copies, None) if augmentations == 1 else _augmented(copies, generator)
        for task, maps in zip(classes, _one_batch(net, transformed, classes, Method(method))):
            for s, m in maps.items():
                sums[s][task] += (m if transforms is None else invert(m, transforms[s])).sum(0)
        done += n
    return {s: {task: _scaled(total) for task, total in per_task.items()} for s, per_task in sums.items()}


def hotspots(net: GradingNet, volume: np.ndarray, classes: dict[int, int], method: Method = DEFAULT_METHOD,
             augmentations: int = DEFAULT_AUGMENTATIONS, seed: int = 0, batch: int = 50) -> dict[int, np.ndarray]:
    """:func:`stream_hotspots` of a single-stream model's T2 disc ``volume`` ``(9, 112, 224)``: ``maps[task]``."""
    return stream_hotspots(net, {"t2": volume}, classes, method, augmentations, seed, batch)["t2"]


def scan_heatmap(volumes, maps: dict[str, dict[str, np.ndarray]], task: str,
                 scan_shape: tuple[int, int, int]) -> np.ndarray:
    """The hotspots of ``task`` for every disc in ``maps`` composed in the scan's voxel grid
    ``(slice, row, column)`` (float32, 0–1; where two disc volumes overlap the larger value wins)."""
    out = np.zeros(scan_shape, np.float32)
    for volume in volumes:
        if task in maps.get(volume.level, {}):
            np.maximum(out, volume.to_scan_grid(maps[volume.level][task]), out=out)
    return out
