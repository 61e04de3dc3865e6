"""The module file ``SpineNet.py`` and its installer, without the Slicer application: the module
loads with torch unavailable (models load on the first Apply), and the engine installer decides
what to install from plain facts (SpineNetLib.install)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SLICER_MODULE
from SpineNetLib.install import (PYTORCH_UTILS, TORCH_VERSION, WHEELS_FOLDER, EngineFacts, InstallPlan, engine_facts,
                                 plan_install, run_plan)

TESTING = Path(__file__).resolve().parent

# slicer-core has slicer.util (VTKObservationMixin, dialogs) but neither the scripted-module base classes nor
# slicer.parameterNodeWrapper: slicer_stand_ins gives them; torch, qt and ctk are made unimportable.
LOAD_WITHOUT_TORCH = """
import importlib.abc, json, sys, types

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "qt", "ctk"):
            raise ImportError(f"{name} is blocked in this test")

sys.meta_path.insert(0, Blocked())
sys.path[:0] = sys.argv[1:3]
from slicer_stand_ins import stand_in_modules

sys.modules.update(stand_in_modules())
import SpineNet

parent = types.SimpleNamespace()
SpineNet.SpineNet(parent)
SpineNet.SpineNetLogic()
installed = SpineNet.engine_installed()
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "spinecore"))
try:
    import torch
    blocked = False
except ImportError:
    blocked = True
print(json.dumps({"title": parent.title, "installed": installed, "heavy": heavy, "blocked": blocked}))
"""


def test_module_file_loads_with_torch_unavailable():
    done = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_TORCH, str(SLICER_MODULE), str(TESTING)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["title"] == "SpineNet"
    assert loaded["installed"] is True  # this venv has spinecore and the pinned torch: found without importing them
    assert loaded["heavy"] == [] and loaded["blocked"]


def test_the_torch_pin_is_spinecores():
    assert f'"torch=={TORCH_VERSION}"' in (REPO / "setup.py").read_text(encoding="utf-8")


WHEELS = (Path("/ext/Resources/Wheels/spinecore-0.1.0-py3-none-any.whl"),
          Path("/ext/Resources/Wheels/spinecore-0.10.2-py3-none-any.whl"),
          Path("/ext/Resources/Wheels/spinecore-0.9.0-py3-none-any.whl"))


def facts(**changes) -> EngineFacts:
    chosen = dict(spinecore_installed=True, torch_version=TORCH_VERSION, pytorch_utils=False, wheels=(), checkout=None)
    return EngineFacts(**{**chosen, **changes})


def test_nothing_to_install_when_spinecore_and_the_pinned_torch_are_there():
    assert plan_install(facts()) == InstallPlan()
    assert not plan_install(facts(torch_version=f"{TORCH_VERSION}+cu126")).needed  # any build of the pin


def test_spinecore_from_the_newest_bundled_wheel_before_a_checkout():
    plan = plan_install(facts(spinecore_installed=False, wheels=WHEELS, checkout=Path("/src")))
    assert plan == InstallPlan(spinecore=str(WHEELS[1]))
    assert "spinecore engine from /ext/Resources/Wheels/spinecore-0.10.2" in plan.confirmation()
    assert "PyTorch" not in plan.confirmation()


def test_spinecore_from_the_checkout_when_no_wheel():
    assert plan_install(facts(spinecore_installed=False, checkout=Path("/src"))) == InstallPlan(spinecore="/src")


def test_no_wheel_and_no_checkout_is_a_problem_not_a_guess():
    plan = plan_install(facts(spinecore_installed=False, torch_version=None, pytorch_utils=True))
    assert plan.needed and plan.spinecore == "" and WHEELS_FOLDER.as_posix() in plan.problem
    with pytest.raises(RuntimeError, match="no spinecore wheel"):
        run_plan(plan, lambda args: pytest.fail("pip called"), lambda req: pytest.fail("torch installed"))


def test_torch_through_the_pytorch_extension_when_it_is_installed():
    plan = plan_install(facts(torch_version=None, pytorch_utils=True))
    assert plan == InstallPlan(torch=PYTORCH_UTILS)
    assert "through Slicer's PyTorch extension" in plan.confirmation() and "replacing" not in plan.confirmation()


def test_torch_from_pip_when_no_pytorch_extension_says_so():
    plan = plan_install(facts(torch_version=None))
    assert plan == InstallPlan(torch="pip")
    assert "from PyPI with pip" in plan.confirmation() and "Extensions Manager" in plan.confirmation()


def test_another_torch_version_is_replaced_and_the_user_told():
    plan = plan_install(facts(torch_version="2.1.0+cu118", pytorch_utils=True))
    assert plan == InstallPlan(torch=PYTORCH_UTILS, replaces_torch="2.1.0+cu118")
    assert "replacing the installed PyTorch 2.1.0+cu118" in plan.confirmation()


def run_recorded(plan: InstallPlan) -> list[tuple[str, list[str] | str]]:
    calls = []
    run_plan(plan, lambda args: calls.append(("pip", args)), lambda req: calls.append((PYTORCH_UTILS, req)))
    return calls


def test_torch_is_installed_before_spinecore_so_pip_keeps_it():
    assert run_recorded(InstallPlan(torch=PYTORCH_UTILS, spinecore="/w.whl")) == [
        (PYTORCH_UTILS, f"=={TORCH_VERSION}"), ("pip", ["/w.whl"])]
    assert run_recorded(InstallPlan(torch="pip", spinecore="/src dir")) == [
        ("pip", [f"torch=={TORCH_VERSION}"]), ("pip", ["/src dir"])]  # a list: a path with spaces stays one argument
    assert run_recorded(InstallPlan()) == []


def test_engine_facts_find_the_bundled_wheels_and_the_checkout(tmp_path):
    module_dir = tmp_path / "SpineNetSlicer" / "SpineNet"
    (module_dir / WHEELS_FOLDER).mkdir(parents=True)
    wheel = module_dir / WHEELS_FOLDER / "spinecore-0.1.0-py3-none-any.whl"
    wheel.touch()
    (module_dir / WHEELS_FOLDER / "other-1.0-py3-none-any.whl").touch()
    found = engine_facts(module_dir)
    assert found.wheels == (wheel,) and found.checkout is None  # no setup.py above: an installed extension
    (tmp_path / "setup.py").touch()
    (tmp_path / "spinecore").mkdir()
    assert engine_facts(module_dir).checkout == tmp_path.resolve()


def test_engine_facts_of_this_environment():
    import importlib.metadata

    found = engine_facts(SLICER_MODULE)
    assert found.spinecore_installed and found.checkout == REPO
    assert found.torch_version == importlib.metadata.version("torch")
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", found.torch_version)


def cmake_setting(name: str) -> str:
    found = re.search(rf'^set\({name} "?([^")]*)"?\)', (REPO / "CMakeLists.txt").read_text(encoding="utf-8"), re.M)
    return found.group(1)


def test_the_extension_metadata_is_true_until_the_project_is_published():
    """No public repository yet: the Extensions Index entry builds this checkout (scm_type local) and
    the homepage, icon and screenshot are files of it, not made-up URLs (README: what a maintainer fills)."""
    entry = json.loads((REPO / "SpineNetSlicer.json").read_text(encoding="utf-8"))
    assert set(entry) <= {"$schema", "build_dependencies", "build_subdirectory", "category", "scm_revision",
                          "scm_type", "scm_url", "tier"}  # the schema allows no other field
    assert (entry["scm_type"], entry["scm_url"]) == ("local", ".")
    assert entry["category"] == cmake_setting("EXTENSION_CATEGORY")
    assert entry["build_dependencies"] == cmake_setting("EXTENSION_DEPENDS").split()
    homepage, section = cmake_setting("EXTENSION_HOMEPAGE").split("#")
    assert section == "3d-slicer" and "\n## 3D Slicer\n" in (REPO / homepage).read_text(encoding="utf-8")
    for image in (cmake_setting("EXTENSION_ICONURL"), *cmake_setting("EXTENSION_SCREENSHOTURLS").split()):
        assert (REPO / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", image
