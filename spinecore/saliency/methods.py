"""Saliency of class scores with respect to the input volume (thesis 5.1).

All three methods work on any ``torch.nn`` model through forward hooks on its own layers (the
model is never edited). Each takes the input ``x`` (a tensor, or a dict ``stream → tensor`` for a
multi-stream model, which is then called with the dict), a list of ``scores`` (callables mapping
the model's output to one value per sample), runs one forward pass and one backward pass per score,
and returns one non-negative map per score with the input's shape (a dict of maps for a dict
input; an input the scores do not depend on gets a zero map): one map per input slice for disc
volumes ``(N, 9, 112, 224)`` (eq. 5.4).

* ``backprop`` (Simonyan et al. 2014): ``|∂score/∂x|``.
* ``guided`` (Springenberg et al. 2015): ReLUs pass back only positive gradients at positive
  inputs (eq. 5.7); the map is ``|∂score/∂x|`` under that rule.
* ``excitation`` (contrastive excitation backprop, Zhang et al. 2016): convolution, linear and
  average-pooling layers pass back *probabilities* through their positive weights,
  ``P_in = x ⊙ W⁺ᵀ (P_out ⊘ W⁺x)`` (eqs. 5.9–5.11); batch norm passes them through unchanged.
  Each score's unit in its ``top`` layer is contrasted with its dual (negated weights, eq. 5.12)
  and the map is the positive part of the difference, taken at the input (default) or at the
  output of ``stop_at`` summed over its channels (thesis 5.1.3 stops at Conv1 for 3-D nets).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


EPS = 1e-6  # guards W⁺x ≈ 0; smaller values let single voxels blow up
Score = Callable[[object], torch.Tensor]
#: A model's input: one tensor, or one per stream.
Inputs = torch.Tensor | dict[str, torch.Tensor]


class _GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, relu_output):
        ctx.save_for_backward(relu_output)
        return relu_output.clone()

    @staticmethod
    def backward(ctx, grad):
        (relu_output,) = ctx.saved_tensors
        return grad.clamp(min=0) * (relu_output > 0)


class _Excitation(torch.autograd.Function):
    """Forward: the layer's own output. Backward: the excitation rule ``x ⊙ W⁺ᵀ (P ⊘ W⁺x)`` for
    each of the layer's positive-weight forwards (``rules``); a contrastive top layer has two, the
    target's and its dual's, and passes back their difference. Below the top layer the rule is
    linear in ``P``, so this one backward pass equals the difference of the two excitation maps.
    ``W⁺x`` and its graph are computed once and kept for the following passes."""

    @staticmethod
    def forward(ctx, layer_input, layer_output, rules):
        ctx.save_for_backward(layer_input)
        ctx.rules, ctx.cache = rules, None
        return layer_output.clone()

    @staticmethod
    def backward(ctx, probability):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            if ctx.cache is None:
                leaf = x.detach().requires_grad_(True)
                ctx.cache = (leaf, [rule(leaf) for rule in ctx.rules])
            leaf, outputs = ctx.cache
            passed = [torch.autograd.grad(y, leaf, probability / (y + EPS), retain_graph=True)[0] for y in outputs]
        z = passed[0] - passed[1] if len(passed) == 2 else passed[0]
        return leaf.detach() * z, None, None


class _PassThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, layer_input, layer_output):
        return layer_output.clone()

    @staticmethod
    def backward(ctx, probability):
        return probability, None


def _positive_rule(m: nn.Module, negate: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """The layer's forward with its weights (negated first for a contrastive dual) clamped at 0."""
    if isinstance(m, nn.AdaptiveAvgPool2d):  # averaging weights are already positive
        return lambda x: F.adaptive_avg_pool2d(x, m.output_size)
    if isinstance(m, nn.AvgPool2d):
        return lambda x: F.avg_pool2d(x, m.kernel_size, m.stride, m.padding)
    if isinstance(m, nn.Linear):
        return lambda x: F.linear(x, ((-m.weight) if negate else m.weight).clamp(min=0))
    return lambda x: m._conv_forward(x, ((-m.weight) if negate else m.weight).clamp(min=0), None)


@contextmanager
def _hooks(model: nn.Module, hook_for: Callable[[nn.Module], Callable | None]):
    handles = [m.register_forward_hook(h) for m in model.modules() if (h := hook_for(m)) is not None]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _leaves(x: Inputs) -> Inputs:
    """Copies of the input tensor(s) that record gradients."""
    if isinstance(x, dict):
        return {k: v.detach().clone().requires_grad_(True) for k, v in x.items()}
    return x.detach().clone().requires_grad_(True)


def _gradients(y: torch.Tensor, targets: Inputs) -> Inputs:
    """``∂y/∂targets`` in the targets' structure; zero for a target ``y`` does not depend on."""
    if not isinstance(targets, dict):
        return _gradients(y, {None: targets})[None]
    found = torch.autograd.grad(y, list(targets.values()), retain_graph=True, allow_unused=True)
    return {k: torch.zeros_like(t) if g is None else g for (k, t), g in zip(targets.items(), found)}


def _each(maps: Inputs, f: Callable[[torch.Tensor], torch.Tensor]) -> Inputs:
    return {k: f(m) for k, m in maps.items()} if isinstance(maps, dict) else f(maps)


def _input_gradients(model, x: Inputs, scores: Sequence[Score], hook_for) -> list[Inputs]:
    inputs = _leaves(x)
    with torch.enable_grad(), _hooks(model, hook_for):
        outputs = model(inputs)
        return [_gradients(score(outputs).sum(), inputs) for score in scores]


def backprop(model: nn.Module, x: Inputs, scores: Sequence[Score]) -> list[Inputs]:
    return [_each(g, torch.abs) for g in _input_gradients(model, x, scores, lambda m: None)]


def guided(model: nn.Module, x: Inputs, scores: Sequence[Score]) -> list[Inputs]:
    def hook_for(m):
        return (lambda mod, inp, out: _GuidedReLU.apply(out)) if isinstance(m, nn.ReLU) else None

    return [_each(g, torch.abs) for g in _input_gradients(model, x, scores, hook_for)]


def excitation(model: nn.Module, x: Inputs, scores: Sequence[Score], tops: Sequence[nn.Linear],
               stop_at: nn.Module | None = None, stopped: Sequence[str] = ()) -> list[Inputs]:
    """Contrastive excitation backprop; ``tops``: the last linear layers of the scores (each
    score's unit there is contrasted with its dual). Maps are taken at the input ``x`` (same shape),
    or at the output of ``stop_at`` summed over its channels ``(N, *spatial)``: for a tensor ``x``
    at its one call; for a dict ``x``, the inputs ``stopped`` names (in the order the model calls
    ``stop_at`` on them, e.g. two streams through one shared tower) at its calls, the others at the input."""
    captured: list[torch.Tensor] = []
    top_ids = set(map(id, tops))

    def rule_hook(m):
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d, nn.AdaptiveAvgPool2d, nn.AvgPool2d)):
            rules = [_positive_rule(m)] + ([_positive_rule(m, negate=True)] if id(m) in top_ids else [])
            return lambda mod, inp, out: _Excitation.apply(inp[0], out.detach(), rules)
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            return lambda mod, inp, out: _PassThrough.apply(inp[0], out.detach())
        return None

    def hook_for(m):
        rule = rule_hook(m)
        if m is not stop_at:
            return rule

        def capture(mod, inp, out):
            out = rule(mod, inp, out) if rule else out
            captured.append(out)
            return out
        return capture

    single = not isinstance(x, dict)
    inputs = _leaves({None: x} if single else x)
    stopped = [None] if single and stop_at is not None else list(stopped)
    maps = []
    with torch.enable_grad(), _hooks(model, hook_for):
        outputs = model(inputs[None] if single else inputs)
        targets = {k: captured[stopped.index(k)] if k in stopped else v for k, v in inputs.items()}
        for score in scores:
            found = _gradients(score(outputs).sum(), targets)
            found = {k: p.clamp(min=0).sum(1) if k in stopped else p.clamp(min=0) for k, p in found.items()}
            maps.append(found[None] if single else found)
    return maps
