"""What to install into Slicer's Python before the first Apply, decided from plain facts (no Qt,
no Slicer, no torch import) so every branch is testable. ``SpineNet.py`` gathers the facts with
:func:`engine_facts`, asks once with :meth:`InstallPlan.confirmation` and runs :func:`run_plan`.

- spinecore: the wheel the extension build put in ``Resources/Wheels`` beside the module file,
  else the source checkout the module lives in, never anything else.
- torch: Slicer's PyTorch extension (``PyTorchUtils``, which picks the CUDA or CPU build) when
  installed, else pip, installed before spinecore so that pip finds spinecore's pin satisfied.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

#: spinecore's torch pin (setup.py; a test keeps them equal): any other version would be replaced by pip
TORCH_VERSION = "2.13.0"
#: where the extension build puts spinecore's wheel, relative to the module folder (module CMakeLists.txt)
WHEELS_FOLDER = Path("Resources") / "Wheels"
PYTORCH_UTILS = "PyTorchUtils"  # the PyTorch extension's module, importable when the extension is installed


@dataclass(frozen=True)
class EngineFacts:
    """``torch_version``: the installed torch's version, None when absent; ``wheels``: the
    spinecore wheels bundled with the extension; ``checkout``: the spinecore source checkout the
    module lives in, if any."""

    spinecore_installed: bool
    torch_version: str | None
    pytorch_utils: bool
    wheels: tuple[Path, ...] = ()
    checkout: Path | None = None


@dataclass(frozen=True)
class InstallPlan:
    """``torch``: "" (keep), ``PYTORCH_UTILS`` or "pip"; ``spinecore``: the pip argument (a wheel
    or a checkout), "" to keep; ``problem``: why spinecore cannot be installed ("" when it can)."""

    torch: str = ""
    spinecore: str = ""
    replaces_torch: str | None = None
    problem: str = ""

    @property
    def needed(self) -> bool:
        return bool(self.torch or self.spinecore or self.problem)

    def confirmation(self) -> str:
        """The question to ask before installing anything."""
        lines = ["SpineNet needs these in Slicer's Python (a download of several hundred MB to a few GB):"]
        if self.torch == PYTORCH_UTILS:
            lines.append(f"- PyTorch {TORCH_VERSION}, through Slicer's PyTorch extension (CUDA or CPU build to suit "
                         "this computer)")
        elif self.torch:
            lines.append(f"- PyTorch {TORCH_VERSION} from PyPI with pip (its default build; install the PyTorch "
                         "extension from the Extensions Manager instead to get the build that suits your GPU)")
        if self.replaces_torch:
            lines.append(f"  replacing the installed PyTorch {self.replaces_torch}, which other modules may use")
        if self.spinecore:
            lines.append(f"- the spinecore engine from {self.spinecore}, with its dependencies")
        return "\n".join([*lines, "Install now? Slicer may need a restart afterwards."])


def wheel_version(wheel: Path) -> tuple[int, ...]:
    """``spinecore-0.1.2-py3-none-any.whl`` → ``(0, 1, 2)``."""
    return tuple(int(n) for n in re.findall(r"\d+", wheel.name.split("-")[1]))


def torch_matches(version: str | None) -> bool:
    """Whether ``version`` is spinecore's pin, whatever its build (``2.13.0+cu126`` counts)."""
    return version is not None and version.split("+")[0] == TORCH_VERSION


def plan_install(facts: EngineFacts) -> InstallPlan:
    torch = ""
    if not torch_matches(facts.torch_version):
        torch = PYTORCH_UTILS if facts.pytorch_utils else "pip"
    spinecore, problem = "", ""
    if not facts.spinecore_installed:
        if facts.wheels:
            spinecore = str(max(facts.wheels, key=wheel_version))
        elif facts.checkout is not None:
            spinecore = str(facts.checkout)
        else:
            problem = (f"SpineNet found no spinecore wheel in its {WHEELS_FOLDER.as_posix()} folder: reinstall the "
                       "extension, or install the engine yourself (slicer.util.pip_install('spinecore'))")
    return InstallPlan(torch=torch, spinecore=spinecore, problem=problem,
                       replaces_torch=facts.torch_version if torch and facts.torch_version else None)


def engine_facts(module_dir: Path) -> EngineFacts:
    """The facts of this Slicer's Python; imports neither torch nor spinecore."""
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = None
    checkout = module_dir.resolve().parents[1]
    return EngineFacts(
        spinecore_installed=importlib.util.find_spec("spinecore") is not None, torch_version=torch_version,
        pytorch_utils=importlib.util.find_spec(PYTORCH_UTILS) is not None,
        wheels=tuple(sorted((module_dir / WHEELS_FOLDER).glob("spinecore-*.whl"))),
        checkout=checkout if (checkout / "setup.py").is_file() and (checkout / "spinecore").is_dir() else None)


def run_plan(plan: InstallPlan, pip_install: Callable[[list[str]], object],
             install_torch_with_pytorch_utils: Callable[[str], object]) -> None:
    """Torch first, then spinecore. ``install_torch_with_pytorch_utils(requirement)`` calls
    ``PyTorchUtilsLogic().installTorch``; ``pip_install`` is ``slicer.util.pip_install``."""
    if plan.problem:
        raise RuntimeError(plan.problem)
    if plan.torch == PYTORCH_UTILS:
        install_torch_with_pytorch_utils(f"=={TORCH_VERSION}")
    elif plan.torch:
        pip_install([f"torch=={TORCH_VERSION}"])
    if plan.spinecore:
        pip_install([plan.spinecore])
    importlib.invalidate_caches()  # so this process finds what pip just installed
