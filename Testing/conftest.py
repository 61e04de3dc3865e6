"""Shared fixtures: one phantom study written to disk per test session, the bundled samples."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spinecore.phantom import PhantomSpec, make_phantom, write_phantom

REPO = Path(__file__).resolve().parents[1]
SAMPLE_T2 = REPO / "Resources" / "SampleData" / "sample_lumbar_t2.nii.gz"
SAMPLE_THORACOLUMBAR = REPO / "Resources" / "SampleData" / "t2_lumbar.nii.gz"
SLICER_MODULE = REPO / "SpineNetSlicer" / "SpineNet"
BATCH_SCRIPT = REPO / "SpineNetSlicer" / "Scripts" / "spinenet_batch.py"
sys.path.insert(0, str(SLICER_MODULE))  # SpineNetLib, as Slicer finds it beside the module file


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory) -> Path:
    """A written phantom study (seed 3): ``dicom/``, ``nifti/``, ``ground_truth.json``."""
    folder = tmp_path_factory.mktemp("phantom")
    write_phantom(make_phantom(PhantomSpec(seed=3)), folder)
    return folder


@pytest.fixture(scope="session")
def phantom_truth(phantom_dir) -> dict:
    return json.loads((phantom_dir / "ground_truth.json").read_text())


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m spinecore ARGS`` and capture its output."""
    return subprocess.run([sys.executable, "-m", "spinecore", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)
