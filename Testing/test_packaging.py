"""spinecore as a normal package: the built wheel carries the bundled models (read from their one
home, ``Resources/Models``), and pip-installed into a fresh venv outside the checkout it reads, localises
and grades the sample from another folder as the checkout does. The Slicer logic and batch tests run
against that installed copy too."""
import json
import re
import zipfile
from pathlib import Path

import pytest

from conftest import ENGINE_INSTALLED, REPO, SAMPLE_T2, run_cli

MODELS = ("localiser.pt", "grader.pt", "grader_t1t2.pt", "phantom_grader.pt", "siamese.pt")
INSTALLED_ENGINE_TESTS = ("test_slicer_logic.py", "test_slicer_batch.py")


def test_the_wheel_ships_the_models_from_their_one_home(installed_engine):
    with zipfile.ZipFile(installed_engine.wheel) as archive:
        for name in MODELS:
            shipped = archive.read(f"spinecore/bundled_models/{name}")
            assert shipped == (REPO / "Resources" / "Models" / name).read_bytes()


def test_the_venv_finds_the_installed_engine_and_models_not_the_checkout(installed_engine, tmp_path):
    where = installed_engine.run("-c", "import spinecore, spinecore.models as m; print(spinecore.__file__); "
                                       "print(m.models_dir())", cwd=tmp_path)
    module, models = map(Path, where.stdout.splitlines())
    assert module == installed_engine.site / "spinecore" / "__init__.py"
    assert models == installed_engine.site / "spinecore" / "bundled_models"
    assert not installed_engine.site.is_relative_to(REPO)


def test_the_installed_command_reads_localises_and_grades_the_sample_from_another_folder(installed_engine, tmp_path):
    """``spinecore`` as pip installed it into the venv, run in an empty folder: the checkout's results."""
    spinecore = installed_engine.python.with_name("spinecore")
    info = installed_engine.run(spinecore, "info", SAMPLE_T2, "--json", cwd=tmp_path)
    assert info.returncode == 0 and info.stderr == "", info.stderr
    assert json.loads(info.stdout) == json.loads(run_cli("info", SAMPLE_T2, "--json").stdout)
    localised = installed_engine.run(spinecore, "localise", SAMPLE_T2, "--out", "localised", cwd=tmp_path)
    graded = installed_engine.run(spinecore, "grade", SAMPLE_T2, "--out", "graded", "--no-tta", cwd=tmp_path)
    for done in (localised, graded):
        assert done.returncode == 0 and done.stderr == "", done.stderr
    assert sorted(p.name for p in (tmp_path / "graded").iterdir()) == ["gradings.csv", "gradings.json", "overview.png",
                                                                      "vertebrae.json"]

    checkout = run_cli("grade", SAMPLE_T2, "--out", tmp_path / "checkout", "--no-tta")
    assert checkout.returncode == 0, checkout.stderr
    assert (tmp_path / "graded" / "gradings.csv").read_text() == (tmp_path / "checkout" / "gradings.csv").read_text()
    for made in (tmp_path / "localised" / "vertebrae.json", tmp_path / "graded" / "vertebrae.json",
                 tmp_path / "graded" / "gradings.json"):
        assert json.loads(made.read_text()) == json.loads((tmp_path / "checkout" / made.name).read_text()), made


@pytest.mark.skipif(ENGINE_INSTALLED, reason="spinecore is installed in this interpreter: those tests run here")
def test_slicer_logic_and_batch_tests_pass_against_the_installed_engine(installed_engine, tmp_path):
    """The Slicer logic and batch tests (``needs_installed_engine``) run with the venv's interpreter."""
    tests = [REPO / "Testing" / name for name in INSTALLED_ENGINE_TESTS]
    done = installed_engine.run("-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'inner'}",
                                *tests, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed(, \d+ warnings?)? in [\d.]+s( \(.*\))?", summary), summary  # no skip, no failure
