"""Grading schemes as data: a scheme names its tasks, and each task its class values.

Labels are stored as the scheme's own values (Pfirrmann 1–5, Modic 0–3, …); networks see class
indices ``0..n-1``. Users define their own scheme in a JSON file::

    {"name": "mine", "tasks": [{"name": "pfirrmann", "values": [1, 2, 3, 4, 5], "ordinal": true,
                                "description": "Pfirrmann grade"}, ...]}
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from spinecore.errors import SpineCoreError


@dataclass(frozen=True)
class Task:
    """One classification task. ``values``: the grades in order; ``ordinal``: grades are ordered
    (kappa is then linear-weighted)."""

    name: str
    values: tuple[int, ...]
    ordinal: bool = False
    description: str = ""

    @property
    def n_classes(self) -> int:
        return len(self.values)

    def index(self, value: int) -> int:
        return self.values.index(int(value))


@dataclass(frozen=True)
class GradingScheme:
    name: str
    tasks: tuple[Task, ...]

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def task(self, name: str) -> Task:
        return next(t for t in self.tasks if t.name == name)

    def to_dict(self) -> dict:
        return {"name": self.name, "tasks": [{"name": t.name, "values": list(t.values), "ordinal": t.ordinal,
                                              "description": t.description} for t in self.tasks]}

    @classmethod
    def from_dict(cls, data: dict) -> "GradingScheme":
        tasks = tuple(Task(str(t["name"]), tuple(int(v) for v in t["values"]), bool(t.get("ordinal", False)),
                           str(t.get("description", ""))) for t in data["tasks"])
        if not tasks or any(t.n_classes < 2 for t in tasks) or len({t.name for t in tasks}) != len(tasks):
            raise ValueError("a scheme needs uniquely named tasks of at least two values each")
        return cls(str(data["name"]), tasks)


def _binary(name: str, description: str) -> Task:
    return Task(name, (0, 1), False, description)


#: Tasks both shipped schemes grade the same way.
PFIRRMANN = Task("pfirrmann", (1, 2, 3, 4, 5), True, "Pfirrmann disc degeneration grade")
ENDPLATE_UPPER = _binary("endplate_upper", "upper endplate defect")
ENDPLATE_LOWER = _binary("endplate_lower", "lower endplate defect")
SPONDYLOLISTHESIS = _binary("spondylolisthesis", "spondylolisthesis")
HERNIATION = _binary("herniation", "disc herniation")

SPIDER = GradingScheme("spider", (
    PFIRRMANN,
    Task("modic", (0, 1, 2, 3), False, "Modic type of the adjacent marrow (0 = none)"),
    ENDPLATE_UPPER, ENDPLATE_LOWER, SPONDYLOLISTHESIS, HERNIATION,
    _binary("narrowing", "disc narrowing"),
    _binary("bulging", "disc bulging"),
))

GENODISC = GradingScheme("genodisc", (
    PFIRRMANN,
    Task("narrowing", (0, 1, 2, 3), True, "disc narrowing: normal, slight, moderate, severe"),
    ENDPLATE_UPPER, ENDPLATE_LOWER,
    _binary("marrow_upper", "upper marrow (Modic) change"),
    _binary("marrow_lower", "lower marrow (Modic) change"),
    SPONDYLOLISTHESIS,
    _binary("stenosis", "central canal stenosis"),
    _binary("bulging_anterior", "anterior disc bulging"),
    _binary("bulging_posterior", "posterior disc bulging"),
    HERNIATION,
))

SCHEMES = {s.name: s for s in (SPIDER, GENODISC)}


def get_scheme(name_or_path: str | Path) -> GradingScheme:
    """A shipped scheme by name (``spider``, ``genodisc``) or a user scheme from a JSON file."""
    if str(name_or_path) in SCHEMES:
        return SCHEMES[str(name_or_path)]
    path = Path(name_or_path)
    if not path.is_file():
        raise SpineCoreError(path, f"not a scheme name ({', '.join(SCHEMES)}) or a scheme JSON file")
    try:
        return GradingScheme.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise SpineCoreError(path, f"not a valid grading scheme ({exc})") from None
