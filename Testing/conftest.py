"""Shared fixtures: one phantom study written to disk per test session, the bundled samples, and
spinecore installed from its built wheel into a fresh virtual environment outside the checkout."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import spinecore
from spinecore.phantom import PhantomSpec, make_phantom, write_phantom
from spinecore.train import seeding

REPO = Path(__file__).resolve().parents[1]
SAMPLE_T2 = REPO / "Resources" / "SampleData" / "sample_lumbar_t2.nii.gz"
SAMPLE_THORACOLUMBAR = REPO / "Resources" / "SampleData" / "t2_lumbar.nii.gz"
SLICER_MODULE = REPO / "SpineNetSlicer" / "SpineNet"
BATCH_SCRIPT = REPO / "SpineNetSlicer" / "Scripts" / "spinenet_batch.py"
sys.path.insert(0, str(SLICER_MODULE))  # SpineNetLib, as Slicer finds it beside the module file
#: environment variables that would let a subprocess see the checkout or other models than the bundled ones
CHECKOUT_VARIABLES = ("PYTHONPATH", "SPINECORE_MODELS")
#: this interpreter runs spinecore installed into its own site-packages (a wheel), not a checkout or an
#: editable install: then the Slicer logic and batch tests run here; else test_packaging.py runs them in a venv
ENGINE_INSTALLED = Path(spinecore.__file__).resolve().is_relative_to(Path(sysconfig.get_paths()["purelib"]).resolve())
needs_installed_engine = pytest.mark.skipif(
    not ENGINE_INSTALLED, reason="runs against the wheel-installed spinecore: test_packaging.py runs it in a venv")
#: pytest-xdist workers share the cores: each worker and its training runs get their share of torch
#: threads, as a Dask worker does (two workers of two torch threads on two cores run torch at half their
#: speed), and so do the commands it starts, through OMP_NUM_THREADS (their trainings keep
#: TRAINING_THREADS). Seeded trainings stay reproducible: one thread count in each process.
XDIST_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if XDIST_WORKERS > 1:
    WORKER_THREADS = max(1, (os.cpu_count() or 1) // XDIST_WORKERS)
    os.environ["OMP_NUM_THREADS"] = str(WORKER_THREADS)
    torch.set_num_threads(WORKER_THREADS)
    seeding.TRAINING_THREADS = WORKER_THREADS


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory) -> Path:
    """A written phantom study (seed 3): ``dicom/``, ``nifti/``, ``ground_truth.json``."""
    folder = tmp_path_factory.mktemp("phantom")
    write_phantom(make_phantom(PhantomSpec(seed=3)), folder)
    return folder


@pytest.fixture(scope="session")
def phantom_truth(phantom_dir) -> dict:
    return json.loads((phantom_dir / "ground_truth.json").read_text())


def in_full_view(entries: list[dict]) -> list[dict]:
    """The phantom truth's vertebrae or discs that the view does not cut through (no ``partial_view``)."""
    return [e for e in entries if not e.get("partial_view")]


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m spinecore ARGS`` and capture its output."""
    return subprocess.run([sys.executable, "-m", "spinecore", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


@dataclass(frozen=True)
class InstalledEngine:
    """spinecore installed with pip from its wheel into a fresh venv outside the checkout. The venv
    reaches this interpreter's installed dependencies through a ``.pth`` file listing its site-packages
    (so nothing is downloaded) but not the checkout: ``env`` has no PYTHONPATH nor SPINECORE_MODELS."""

    wheel: Path
    python: Path
    site: Path
    env: dict

    def run(self, *args, cwd: Path) -> subprocess.CompletedProcess:
        """Run the venv's ``python ARGS`` in ``cwd``."""
        return subprocess.run([str(self.python), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                              env=self.env, timeout=600)


def build_wheel(folder: Path) -> Path:
    """spinecore's wheel, built from a copy of the checkout (so no stale ``build/`` of it gets in)."""
    source = folder / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", "*.egg-info",
                                                                "__pycache__", ".pytest_cache", "sample-output"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(folder / "dist"), str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = (folder / "dist").glob("spinecore-*.whl")
    return wheel


@pytest.fixture(scope="session")
def installed_engine(tmp_path_factory) -> InstalledEngine:
    folder = tmp_path_factory.mktemp("installed")
    wheel = build_wheel(folder)
    venv.EnvBuilder(with_pip=False).create(folder / "venv")
    python = folder / "venv" / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    here = dict.fromkeys((sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]))
    (site / "test-interpreter-packages.pth").write_text("".join(f"{p}\n" for p in here), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in CHECKOUT_VARIABLES}
    # the venv's own pip run (pip itself comes through the .pth); --no-index: its dependencies are all there
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-index", str(wheel)],
                               capture_output=True, text=True, cwd=folder, env=env, timeout=600)
    assert installed.returncode == 0, installed.stderr
    return InstalledEngine(wheel, python, site, env)


def disc_set_labelled_by_t1(task: str, level: str, lesion: tuple[slice, ...], n: int = 64):
    """``(DiscSet, labels)``: ``n`` random T2 disc volumes of ``level`` and their T1 copies in which
    the discs labelled 1 for ``task`` (genodisc scheme) carry a bright ``lesion`` (slices, rows,
    columns); only the T1 shows the label. Seeded: the same data every call."""
    import numpy as np

    from spinecore.data.manifests import DiscSet
    from spinecore.grade import GENODISC
    from spinecore.grade.loss import MISSING

    g = np.random.default_rng(0)
    labels = g.integers(0, 2, n)
    t2 = g.uniform(0.2, 0.6, (n, 9, 112, 224)).astype(np.float32)
    t1 = t2.copy()
    t1[(labels == 1, *lesion)] = 1.0
    scheme_labels = np.full((n, len(GENODISC.tasks)), MISSING)
    scheme_labels[:, GENODISC.task_names.index(task)] = labels
    data = DiscSet(np.round(t2 * 255).astype(np.uint8), scheme_labels, [f"p{i}" for i in range(n)], [level] * n,
                   ["x"] * n, {"t1": np.round(t1 * 255).astype(np.uint8)})
    return data, labels
