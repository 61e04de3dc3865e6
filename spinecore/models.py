"""The one way to save, find and load spinecore model files.

A model file is a ``torch.save`` of a plain dict (loaded with ``weights_only=True``)::

    {"format": "spinecore-model", "kind": "localiser", "version": 1,
     "config": {...constructor arguments...}, "state_dict": {...tensors...},
     "metadata": {...training command, seed, data split, metrics...}}

Bundled models live in ``Resources/Models/<kind>.pt`` next to their model card
``<kind>.md``; ``SPINECORE_MODELS`` points to another folder.
"""
from __future__ import annotations

import os
import pickle
import zipfile
from importlib.resources import files
from dataclasses import dataclass
from pathlib import Path

import torch

from spinecore.errors import ModelError, brief

FORMAT = "spinecore-model"
VERSION = 1
#: The package that holds the bundled models (setup.py maps it onto ``Resources/Models``).
BUNDLED_MODELS = "spinecore.bundled_models"


def models_dir() -> Path:
    return Path(os.environ.get("SPINECORE_MODELS") or str(files(BUNDLED_MODELS)))


def default_model_path(kind: str) -> Path:
    """Where the bundled model of ``kind`` (e.g. ``"localiser"``) lives."""
    return models_dir() / f"{kind}.pt"


@dataclass(frozen=True)
class TrainedModel:
    """What a trainer returns and :func:`save_model` writes: the ``kind`` (``"localiser"``,
    ``"grader"``), the constructor ``config`` that rebuilds the network, the trained ``network``
    and the ``metadata`` (training command, seed, data split, metrics)."""

    kind: str
    config: dict
    network: torch.nn.Module
    metadata: dict


def save_model(path: Path, model: TrainedModel) -> None:
    """Write ``model`` to ``path`` atomically: staged beside it, moved into place when complete."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        torch.save({"format": FORMAT, "kind": model.kind, "version": VERSION, "config": model.config,
                    "state_dict": {k: v.detach().cpu() for k, v in model.network.state_dict().items()},
                    "metadata": model.metadata}, partial)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def load_model(path: Path | None, kind: str) -> dict:
    """The checkpoint dict of a ``kind`` model (default: the bundled one); raises
    :class:`ModelError` naming the file when it is missing, unreadable or not ours."""
    path = Path(path) if path is not None else default_model_path(kind)
    if not path.is_file():
        raise ModelError(path, f"no {kind} model file here")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, KeyError) as exc:
        raise ModelError(path, f"not a readable model file ({brief(exc, 80)})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ModelError(path, "not a spinecore model file")
    if checkpoint.get("kind") != kind:
        raise ModelError(path, f"a {checkpoint.get('kind')!r} model, not a {kind} model")
    if checkpoint.get("version") != VERSION:
        raise ModelError(path, f"model format version {checkpoint.get('version')} is not supported")
    return checkpoint
