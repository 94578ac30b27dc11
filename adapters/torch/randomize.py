"""Layer randomization of torch modules (the ``layers`` kind of the ``randomization`` capability).

Adebayo et al. 2018's model parameter randomization test, as Quantus' ``MPRT`` runs it: the
layers are the modules owning parameters (``named_modules`` order), taken top-down from the
output; each is re-initialised with its own ``reset_parameters`` (or, without one, a normal draw
of each parameter's own standard deviation) after the torch seed is set to the request's
``reinit_seed`` (Quantus' ``get_random_layer_generator`` sets ``seed + 1``). ``cascading``: stage
``i`` randomizes the top ``i + 1`` layers; ``independent``: stage ``i`` randomizes layer ``i``
alone. The module given is never changed: every stage is a deep copy, in eval mode.
"""

from __future__ import annotations

import copy

import torch

from xaudit.errors import CapabilityError
from xaudit.randomization import Randomization


def parameter_layers(module: torch.nn.Module) -> list[str]:
    """Names of the submodules that own parameters, in ``named_modules`` order."""
    return [name for name, sub in module.named_modules()
            if any(True for _ in sub.parameters(recurse=False))]


def randomized_modules(module: torch.nn.Module, request: Randomization, label: str
                       ) -> list[tuple[str, torch.nn.Module]]:
    """``(layer name, randomized copy)`` per stage of ``request`` (``label`` names the model)."""
    layers = parameter_layers(module)
    if not layers:
        raise CapabilityError(f"model {label!r} has no layers with parameters to randomize")
    stages = []
    running = copy.deepcopy(module)
    for name in layers[::-1][:request.max_layers]:
        target = running if request.mode == "cascading" else copy.deepcopy(module)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(request.reinit_seed)
            reinitialise(dict(target.named_modules())[name])
        stages.append((name, copy.deepcopy(target).eval()))
    return stages


def reinitialise(layer: torch.nn.Module) -> None:
    """Draw ``layer``'s own parameters afresh (under the caller's seed and ``no_grad``)."""
    reset = getattr(layer, "reset_parameters", None)
    if callable(reset):
        reset()
        return
    for param in layer.parameters(recurse=False):
        std = float(param.detach().float().std()) if param.numel() > 1 else 1.0
        param.copy_(torch.randn_like(param) * (std or 1.0))
