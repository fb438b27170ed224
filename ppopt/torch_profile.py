"""``ppopt profile``: measure a PyTorch model's layers on the local device into a profile CSV.

The model is an ``nn.Sequential``-style module: its children, in order, are the layers (a
child's name is its layer name, so ``layers.0`` for torchtitan-style names when the model is
built that way). For each layer, on the output of the layers before it:

* ``forward``: the forward pass (autograd recording, as in training);
* ``backward``: the input gradient alone, ``torch.autograd.grad(out, input)`` (ppopt's B);
* ``weight``: the weight gradient alone, ``torch.autograd.grad(out, parameters)`` (W);
* ``activation``: what the forward saves for the backward (the tensors autograd keeps,
  parameters excluded, each storage once), in MiB;
* ``parameters``: the layer's parameter memory, in MiB.

Times are medians over ``repeats`` runs after ``warmup`` runs, in milliseconds, with the
device synchronised around each timed call. A gradient that does not exist (no parameters;
an input of token ids) takes 0; a stage's sums must still be > 0, so a partition that puts
only such layers on a stage is refused (or skipped by ``partition: auto``). PyTorch is an
optional dependency: the command line imports this module only when ``ppopt profile`` runs.
"""

from __future__ import annotations

import importlib
import statistics
import time
from typing import Any

import torch

from ppopt.errors import ConfigError
from ppopt.layers import Layer

MIB = 2.0**20


def load_model(spec: str) -> tuple[Any, Any]:
    """``module:function`` → ``function()``, which returns ``(model, example_input)``."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"model: expected module:function, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(f"model: cannot import {module_name!r}: {error}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ConfigError(f"model: {module_name} has no function {attribute!r}")
    built = factory()
    if not (isinstance(built, tuple) and len(built) == 2):
        raise ConfigError(f"model: {spec}() must return (model, example_input)")
    return built


def profile_model(model: Any, example: Any, repeats: int = 5, warmup: int = 1) -> list[Layer]:
    """One :class:`Layer` per child of ``model``, measured as the module docstring says."""
    children = list(model.named_children())
    if not children:
        raise ConfigError("model: has no child modules to profile as layers")
    layers, x = [], example
    for name, layer in children:
        layers.append(_profile_layer(name, layer, x, repeats, warmup))
        with torch.no_grad():
            x = layer(x)
    return layers


def _profile_layer(name: str, layer: Any, x: Any, repeats: int, warmup: int) -> Layer:
    params = [p for p in layer.parameters() if p.requires_grad]
    inputs = x.detach().requires_grad_(x.is_floating_point())
    saved = _saved_bytes(layer, inputs, params)
    forward, backward, weight = [], [], []
    for run in range(warmup + repeats):
        start = _now(inputs)
        out = layer(inputs)
        forward_time = _now(inputs) - start
        grad = torch.ones_like(out)
        backward_time = _grad_time(out, [inputs] if inputs.requires_grad else [], grad)
        weight_time = _grad_time(out, params, grad)
        if run >= warmup:
            forward.append(forward_time)
            backward.append(backward_time)
            weight.append(weight_time)
    return Layer(
        name=name,
        forward=statistics.median(forward),
        backward=statistics.median(backward),
        weight=statistics.median(weight),
        activation=saved / MIB,
        parameters=sum(p.numel() * p.element_size() for p in params) / MIB,
    )


def _grad_time(out: Any, wrt: list[Any], grad: Any) -> float:
    """Milliseconds of one ``torch.autograd.grad`` w.r.t. ``wrt`` (0 when it is empty)."""
    if not wrt or not out.requires_grad:
        return 0.0
    start = _now(out)
    torch.autograd.grad(out, wrt, grad_outputs=grad, retain_graph=True, allow_unused=True)
    return _now(out) - start


def _saved_bytes(layer: Any, inputs: Any, params: list[Any]) -> int:
    """Bytes of the tensors the forward saves for the backward, parameters excluded, each
    storage counted once."""
    skip = {p.untyped_storage().data_ptr() for p in params}
    seen: dict[int, int] = {}

    def pack(tensor: Any) -> Any:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        layer(inputs)
    return sum(seen.values())


def _now(tensor: Any) -> float:
    """Milliseconds on a clock, after the tensor's device has finished its queued work."""
    if tensor.device.type == "cuda":
        torch.cuda.synchronize(tensor.device)
    return time.perf_counter() * 1000.0
