"""The module's settings as a small dataclass, kept in a parameter node (a
``vtkMRMLScriptedModuleNode``) so they are saved with the scene. No Qt here."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from spinecore.saliency import DEFAULT_AUGMENTATIONS, DEFAULT_METHOD, Method


@dataclass
class SpineNetParameters:
    """``grader_model`` / ``localiser_model``: model files, empty for the bundled ones.
    ``hotspot_tasks``: tasks to make heatmap volumes for (empty: none)."""

    grader_model: str = ""
    localiser_model: str = ""
    tta: bool = True
    hotspot_tasks: tuple[str, ...] = ()
    method: str = DEFAULT_METHOD.value
    augmentations: int = DEFAULT_AUGMENTATIONS
    all_slices: bool = False

    def __post_init__(self):
        self.method = Method(self.method).value
        self.augmentations = int(self.augmentations)
        if self.augmentations < 1:
            raise ValueError(f"augmentations must be at least 1, not {self.augmentations}")
        self.hotspot_tasks = tuple(self.hotspot_tasks)

    def write(self, node) -> None:
        """Store every field as a parameter of ``node``."""
        for name, value in asdict(self).items():
            node.SetParameter(name, ",".join(value) if isinstance(value, tuple) else str(value))

    @classmethod
    def read(cls, node) -> "SpineNetParameters":
        """The fields stored in ``node``; defaults for the ones it lacks."""
        values, stored = {}, set(node.GetParameterNames())
        for f in fields(cls):
            if f.name not in stored:
                continue
            text = node.GetParameter(f.name)
            if f.name == "hotspot_tasks":
                values[f.name] = tuple(t for t in text.split(",") if t)
            elif f.name in ("tta", "all_slices"):
                values[f.name] = text == "True"
            else:
                values[f.name] = text
        return cls(**values)
