"""Grade the discs of a localised series with a trained model file."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spinecore.errors import ModelError
from spinecore.extract import StructureVolume, disc_volumes
from spinecore.grade.network import GradingNet, NetConfig
from spinecore.grade.qc import disc_flags
from spinecore.grade.schemes import GradingScheme
from spinecore.grade.tta import CENTRE_VIEW, make_views, views_for
from spinecore.io.series import Series
from spinecore.localise.spine import Spine
from spinecore.models import default_model_path, load_model

KIND = "grader"


@dataclass(frozen=True)
class DiscGrading:
    """Calibrated class probabilities of one disc: ``probabilities[task]`` is ``(n_classes,)`` in the
    order of the task's values; ``flags``: its grading QC flags (:data:`~spinecore.grade.qc.GRADING_FLAGS`)."""

    level: str
    probabilities: dict[str, np.ndarray]
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Gradings:
    """The gradings of one series, discs cranial → caudal."""

    scheme: GradingScheme
    model_id: str
    tta: bool
    discs: tuple[DiscGrading, ...]

    def predicted(self, disc: DiscGrading, task: str) -> tuple[int, float]:
        """The grade (in the scheme's own values) and its probability."""
        p = disc.probabilities[task]
        best = int(np.argmax(p))
        return self.scheme.task(task).values[best], float(p[best])

    def rows(self) -> list[dict]:
        """One row per disc: ``level``, then per task the grade and ``<task>_confidence``."""
        rows = []
        for disc in self.discs:
            row = {"level": disc.level}
            for task in self.scheme.task_names:
                row[task], confidence = self.predicted(disc, task)
                row[f"{task}_confidence"] = round(confidence, 4)
            rows.append(row)
        return rows


def load_grader_net(path: Path | None) -> tuple[GradingNet, GradingScheme, dict]:
    """The network, scheme and metadata of a grader model file (default: the bundled one)."""
    path = Path(path) if path is not None else default_model_path(KIND)
    checkpoint = load_model(path, KIND)
    try:
        net = GradingNet(NetConfig.from_dict(checkpoint["config"]["net"]))
        scheme = GradingScheme.from_dict(checkpoint["config"]["scheme"])
        net.load_state_dict(checkpoint["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError):
        raise ModelError(path, "grader model file is damaged or from another spinecore version") from None
    if [t.n_classes for t in scheme.tasks] != list(net.config.n_classes):
        raise ModelError(path, "grader model's scheme does not match its network")
    return net.eval(), scheme, dict(checkpoint.get("metadata", {}))


class Grader:
    """A grading model: ``Grader.load(path)`` reads a model file (default: the bundled one);
    ``grader(series, spine)`` grades every disc the localiser found."""

    def __init__(self, net: GradingNet, scheme: GradingScheme, metadata: dict):
        self.net, self.scheme, self.metadata = net.eval(), scheme, metadata
        self.model_id = str(metadata.get("model_id", "unnamed"))

    @classmethod
    def load(cls, path: Path | None = None) -> "Grader":
        return cls(*load_grader_net(path))

    @torch.inference_mode()
    def logits(self, volumes: torch.Tensor, tta: bool = True) -> list[torch.Tensor]:
        """Per-task logits ``(N, n_classes)`` of volumes ``(N, 9, 112, 224)``, averaged over the
        TTA views (:func:`~spinecore.grade.tta.views_for`) when ``tta``."""
        per_volume = []
        for volume in volumes:
            batch = make_views(volume[None], views_for(volume) if tta else (CENTRE_VIEW,))[0]
            per_volume.append([l.mean(0) for l in self.net(batch)])
        return [torch.stack([v[t] for v in per_volume]) for t in range(len(self.scheme.tasks))]

    def grade_volumes(self, volumes: list[StructureVolume], tta: bool = True) -> Gradings:
        discs = ()
        if volumes:
            logits = self.logits(torch.from_numpy(np.stack([v.array for v in volumes])), tta)
            probs = [p.numpy() for p in self.net.probabilities(logits)]
            discs = tuple(self._disc(volume, {t.name: probs[n][i] for n, t in enumerate(self.scheme.tasks)})
                          for i, volume in enumerate(volumes))
        return Gradings(self.scheme, self.model_id, tta, discs)

    @staticmethod
    def _disc(volume: StructureVolume, probabilities: dict[str, np.ndarray]) -> DiscGrading:
        return DiscGrading(volume.level, probabilities,
                           disc_flags(volume, [float(p.max()) for p in probabilities.values()]))

    def __call__(self, series: Series, spine: Spine, tta: bool = True) -> Gradings:
        return self.grade_volumes(disc_volumes(series, spine), tta)
