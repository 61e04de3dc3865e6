"""Grade the discs of a localised series with a trained model file."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spinecore.errors import ModelError
from spinecore.extract import StructureVolume, disc_volumes
from spinecore.grade.fusion import STREAM_SHAPES, FusionConfig, FusionNet, run
from spinecore.grade.network import GradingNet, NetConfig
from spinecore.grade.qc import disc_flags
from spinecore.grade.schemes import GradingScheme
from spinecore.grade.tta import CENTRE_VIEW, View, make_views, views_for
from spinecore.io.series import Series
from spinecore.localise.spine import Spine
from spinecore.models import default_model_path, load_model, models_dir
from spinecore.streams import SAGITTAL

KIND = "grader"
#: The bundled T1 + T2 grader (FC8 sum, thesis 6.2): the default for a study with a sagittal T1.
BUNDLED_T1T2 = "grader_t1t2.pt"


@dataclass(frozen=True)
class DiscGrading:
    """Calibrated class probabilities of one disc: ``probabilities[task]`` is ``(n_classes,)`` in the
    order of the task's values; ``flags``: its grading QC flags (:data:`~spinecore.grade.qc.GRADING_FLAGS`);
    ``streams``: the inputs the grade rests on (``t2``, ``t1``, ``axial``)."""

    level: str
    probabilities: dict[str, np.ndarray]
    flags: tuple[str, ...] = ()
    streams: tuple[str, ...] = ("t2",)


@dataclass(frozen=True)
class Gradings:
    """The gradings of one series, discs cranial → caudal."""

    scheme: GradingScheme
    model_id: str
    tta: bool
    discs: tuple[DiscGrading, ...]
    #: The streams the model reads (its discs may have fewer).
    model_streams: tuple[str, ...] = ("t2",)

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


def load_grader_net(path: Path | None) -> tuple[GradingNet | FusionNet, GradingScheme, dict]:
    """The network, scheme and metadata of a grader model file (default: the bundled one); a
    multi-stream model (its config holds ``streams`` and ``fusion``) gives a :class:`FusionNet`."""
    path = Path(path) if path is not None else default_grader_path()
    checkpoint = load_model(path, KIND)
    try:
        config = checkpoint["config"]
        net_config = NetConfig.from_dict(config["net"])
        net = FusionNet(FusionConfig.from_dict(config)) if "fusion" in config else GradingNet(net_config)
        scheme = GradingScheme.from_dict(config["scheme"])
        net.load_state_dict(checkpoint["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError):
        raise ModelError(path, "grader model file is damaged or from another spinecore version") from None
    if [t.n_classes for t in scheme.tasks] != list(net_config.n_classes):
        raise ModelError(path, "grader model's scheme does not match its network")
    return net.eval(), scheme, dict(checkpoint.get("metadata", {}))


def default_grader_path(t1: bool = False) -> Path:
    """The bundled grader for a study: the T1 + T2 model (:data:`BUNDLED_T1T2`) when the study has a
    sagittal ``t1`` and the models folder holds that model, else the T2 model."""
    fused = models_dir() / BUNDLED_T1T2
    return fused if t1 and fused.is_file() else default_model_path(KIND)


def stream_views(stream: str, views: tuple[View, ...]) -> tuple[View, ...]:
    """The TTA views of a stream: the sagittal streams take them all (together, in register); the
    axial stream only their in-plane patch shifts (its slices are not sagittal)."""
    return views if stream in SAGITTAL else tuple(View(v.rows, v.cols, False, 0) for v in views)


class Grader:
    """A grading model: ``Grader.load(path)`` reads a model file (default: the bundled one for a study
    with or without a sagittal T1, :func:`default_grader_path`);
    ``grader(series, spine)`` grades every disc the localiser found. ``streams``: the inputs the
    model reads (``("t2",)`` for a single-stream model)."""

    def __init__(self, net: GradingNet | FusionNet, scheme: GradingScheme, metadata: dict):
        self.net, self.scheme, self.metadata = net.eval(), scheme, metadata
        self.model_id = str(metadata.get("model_id", "unnamed"))
        self.streams = tuple(net.streams)

    @classmethod
    def load(cls, path: Path | None = None, *, t1: bool = False) -> "Grader":
        return cls(*load_grader_net(path if path is not None else default_grader_path(t1)))

    @torch.inference_mode()
    def logits(self, inputs: dict[str, torch.Tensor], tta: bool = True) -> list[torch.Tensor]:
        """Per-task logits ``(N, n_classes)`` of stream ``inputs`` (``stream → (N, slices, rows,
        columns)``, all-zero where a disc lacks the stream; streams the model does not read are
        ignored), averaged over the TTA views of each disc's T2 (:func:`~spinecore.grade.tta.views_for`)
        when ``tta``."""
        inputs = {s: x for s, x in inputs.items() if s in self.streams}
        per_volume = []
        for i, t2 in enumerate(inputs["t2"]):
            views = views_for(t2) if tta else (CENTRE_VIEW,)
            batch = {s: make_views(x[i:i + 1], stream_views(s, views))[0] for s, x in inputs.items()}
            per_volume.append([l.mean(0) for l in run(self.net, batch)])
        return [torch.stack([v[t] for v in per_volume]) for t in range(len(self.scheme.tasks))]

    def grade_volumes(self, volumes: list[StructureVolume], tta: bool = True,
                      others: dict[str, dict[str, StructureVolume]] | None = None) -> Gradings:
        """Grade the T2 disc ``volumes`` with, per disc, the volumes of the other streams it has
        (``others[stream][level]``, e.g. from :func:`~spinecore.extract.t1_disc_volumes`) that the
        model reads; each disc records the streams used."""
        others = {s: found for s, found in (others or {}).items() if s in self.streams}
        discs = ()
        if volumes:
            inputs = {"t2": torch.from_numpy(np.stack([v.array for v in volumes]))}
            for stream, found in others.items():
                zero = np.zeros(STREAM_SHAPES[stream], np.float32)
                inputs[stream] = torch.from_numpy(np.stack([found[v.level].array if v.level in found else zero
                                                            for v in volumes]))
            probs = [p.numpy() for p in self.net.probabilities(self.logits(inputs, tta))]
            discs = tuple(self._disc(v, {t.name: probs[n][i] for n, t in enumerate(self.scheme.tasks)},
                                     ("t2", *(s for s in self.streams if v.level in others.get(s, {}))))
                          for i, v in enumerate(volumes))
        return Gradings(self.scheme, self.model_id, tta, discs, self.streams)

    @staticmethod
    def _disc(volume: StructureVolume, probabilities: dict[str, np.ndarray], streams: tuple[str, ...]) -> DiscGrading:
        return DiscGrading(volume.level, probabilities,
                           disc_flags(volume, [float(p.max()) for p in probabilities.values()]), streams)

    def __call__(self, series: Series, spine: Spine, tta: bool = True) -> Gradings:
        return self.grade_volumes(disc_volumes(series, spine), tta)
