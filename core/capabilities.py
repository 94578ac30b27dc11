"""Capability preconditions, checked in one place and refused with one message.

The host negotiates what an explainer or check declares (``requires``, ``modalities``) with
:func:`unmet` before any work starts; a plugin that uses a capability asks for the model typed
for it with :func:`require`, and refuses a precondition that no declaration covers (integer
inputs where a method differentiates the input, a model without a torch module) with
:func:`refusal`. A model offers a capability when it declares it in ``capabilities`` *and*
implements the matching protocol (:class:`~xaudit.model.DifferentiableModel` for
``gradients``, :class:`~xaudit.model.LayeredModel` for ``layers``,
:class:`~xaudit.trees.TreeModel` for ``tree_ensemble``,
:class:`~xaudit.randomization.RandomizableModel` for ``randomization``). Every refusal reads::

    <method> needs <what>, which model '<name>' (adapter '<adapter>', <modality> input,
    capabilities: <sorted list>) does not offer[; <hint>]

where ``<what>`` names each missing capability with the model's reason for lacking it, when
its adapter gives one (``capability_reasons``, see :func:`reason`): ``capability
'tree_ensemble' (not available: booster 'dart' is not supported ...)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal, overload

from .errors import CapabilityError
from .model import DifferentiableModel, LayeredModel, Model
from .protocols import conforms
from .randomization import RandomizableModel
from .trees import TreeModel

PROTOCOLS: dict[str, type] = {
    "gradients": DifferentiableModel,
    "layers": LayeredModel,
    "tree_ensemble": TreeModel,
    "randomization": RandomizableModel,
}
"""The protocol a model implements for each capability that has one."""


def offers(model: Model, capability: str) -> bool:
    """Whether ``model`` declares ``capability`` and implements its protocol."""
    protocol = PROTOCOLS.get(capability)
    return capability in model.capabilities and (protocol is None or conforms(model, protocol))


def reason(model: Model, capability: str) -> str | None:
    """Why ``model`` lacks ``capability``, as its adapter recorded it in the optional mapping
    ``capability_reasons`` (``None`` when it gives none)."""
    reasons = getattr(model, "capability_reasons", None) or {}
    found = reasons.get(capability)
    return None if found is None else str(found)


def unmet(model: Model, requires: Iterable[str] = (),
          modalities: Iterable[str] | None = None) -> list[str]:
    """What ``model`` lacks of ``requires`` (capabilities, each with the model's
    :func:`reason` when it gives one) and ``modalities`` (any one of them, ``None``: any
    input), each as a phrase for :func:`refusal`; empty when nothing is missing."""
    needs = []
    for capability in sorted(set(requires)):
        if not offers(model, capability):
            why = reason(model, capability)
            needs.append(f"capability {capability!r}"
                         + (f" (not available: {why})" if why else ""))
    allowed = None if modalities is None else sorted(set(modalities))
    if allowed is not None and model.input_spec.modality not in allowed:
        needs.append(f"{' or '.join(allowed)} input")
    return needs


def refusal(method: str, needs: str | Sequence[str], model: Model,
            hint: str = "") -> CapabilityError:
    """The error refusing ``model`` to ``method`` (a name, or ``"explainer 'x'"``), which
    ``needs`` one or more things (phrases such as ``"capability 'gradients'"``); ``hint`` says
    what to do instead."""
    what = needs if isinstance(needs, str) else " and ".join(needs)
    text = (f"{method} needs {what}, which model {model.name!r} (adapter {model.adapter!r}, "
            f"{model.input_spec.modality} input, capabilities: "
            f"{', '.join(sorted(model.capabilities))}) does not offer")
    return CapabilityError(f"{text}; {hint}" if hint else text)


@overload
def require(model: Model, capability: Literal["gradients"], method: str) -> DifferentiableModel:
    ...


@overload
def require(model: Model, capability: Literal["layers"], method: str) -> LayeredModel:
    ...


@overload
def require(model: Model, capability: Literal["tree_ensemble"], method: str) -> TreeModel:
    ...


@overload
def require(model: Model, capability: str, method: str) -> Model:
    ...


def require(model: Model, capability: str, method: str) -> Model:
    """``model``, typed for ``capability``, or the :func:`refusal` naming ``method``."""
    needs = unmet(model, [capability])
    if needs:
        raise refusal(method, needs, model)
    return model
