"""Stand-ins for what slicer-core (Slicer's MRML without the application and Qt) lacks, so that
``SpineNet.py`` loads and its widget's Qt-free parts run in the tests: the scripted-module base classes
(``slicer.ScriptedLoadableModule`` needs the application) and ``slicer.parameterNodeWrapper`` (its GUI
binding needs Qt). Imports nothing heavy: a test loads the module with torch blocked."""
from __future__ import annotations

import types
import typing
from dataclasses import dataclass

import slicer


class ModulePart:
    """Base of the stand-in ScriptedLoadableModule, ...Widget, ...Logic and ...Test classes."""

    def __init__(self, parent=None):
        self.parent = parent


@dataclass(frozen=True)
class WithinRange:
    minimum: int
    maximum: int


def stand_in_modules() -> dict[str, types.ModuleType]:
    """``sys.modules`` entries to add before loading ``SpineNet.py``; ``parameterNodeWrapper`` leaves
    the class as declared (its annotations and defaults: see :class:`ParameterNodeStandIn`)."""
    scripted = types.ModuleType("slicer.ScriptedLoadableModule")
    for name in ("ScriptedLoadableModule", "ScriptedLoadableModuleLogic", "ScriptedLoadableModuleTest",
                 "ScriptedLoadableModuleWidget"):
        setattr(scripted, name, type(name, (ModulePart,), {}))
    wrapper = types.ModuleType("slicer.parameterNodeWrapper")
    wrapper.parameterNodeWrapper = lambda declared: declared
    wrapper.WithinRange = WithinRange
    return {scripted.__name__: scripted, wrapper.__name__: wrapper}


def field_default(declared: type, name: str, hint):
    """A parameterNodeWrapper field's default: the class's value, else its type's empty value ("",
    False, 0, []), else None (a node)."""
    if hasattr(declared, name):
        return getattr(declared, name)
    base = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
    base = typing.get_origin(base) or base  # list[str] → list
    return base() if base in (str, bool, int, list) else None


class ParameterNodeStandIn:
    """What the widget uses of a parameterNodeWrapper instance: the declared fields with their
    defaults, a ModifiedEvent on every change (through a real ``vtkMRMLScriptedModuleNode``), and
    ``connectGui``/``disconnectGui``, which record the binding in ``bindings`` (the binding itself needs Qt)."""

    def __init__(self, declared: type):
        hints = typing.get_type_hints(declared, include_extras=True)
        object.__setattr__(self, "fields", tuple(hints))
        object.__setattr__(self, "node", slicer.vtkMRMLScriptedModuleNode())
        object.__setattr__(self, "bound", None)
        object.__setattr__(self, "bindings", [])
        for name, hint in hints.items():
            object.__setattr__(self, name, field_default(declared, name, hint))

    def __setattr__(self, name: str, value) -> None:
        if name not in self.fields:
            raise AttributeError(f"{name} is not a field of the parameter node")
        object.__setattr__(self, name, value)
        self.node.Modified()

    def AddObserver(self, event, callback, priority: float = 0.0) -> int:
        return self.node.AddObserver(event, callback, priority)

    def RemoveObserver(self, tag: int) -> None:
        self.node.RemoveObserver(tag)

    def connectGui(self, ui) -> int:
        assert self.bound is None, "bound twice"
        object.__setattr__(self, "bound", ui)
        self.bindings.append("connect")
        return len(self.bindings)

    def disconnectGui(self, tag: int) -> None:
        assert self.bound is not None and tag == len(self.bindings), "not the tag connectGui gave"
        object.__setattr__(self, "bound", None)
        self.bindings.append("disconnect")
