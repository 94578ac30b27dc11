"""Describing, converting and checking a loaded torch module: the last step of adapting it.

The forward's inputs (names, row shapes, integer ids or floats) come from options, a
``torch.export`` record, or the module itself (forward signature; a first ``nn.Linear`` fixes
the row width). The module is put in eval mode on the chosen device and dtype (a user's module
is deep-copied when either must change, so its parameters stay as they were), then run twice
on a small seeded probe batch: a failing forward is reported with the input shape it was
given, and different outputs for the same input (dropout left on by a custom forward, a program
exported in train mode) are refused.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import math
from dataclasses import dataclass
from typing import Any

import torch

from xaudit.adapters.torch.loading import Source, resolve_source
from xaudit.adapters.torch.model import TorchModel, module_sha256
from xaudit.adapters.torch.options import TorchOptions
from xaudit.adapters.torch.randomize import parameter_layers
from xaudit.errors import InputError, ModelLoadError
from xaudit.model import InputSpec, Modality, default_output_names


def load_torch_model(obj: object, options: TorchOptions, adapter: str) -> TorchModel:
    """Adapt ``obj`` (module, exported program or file) into a checked :class:`TorchModel`.

    A single-input module whose row shape neither the options, an export record nor a first
    ``Linear`` layer fixes (a CNN, say) is returned unbound: it takes the row shape from the
    first rows it is given (:meth:`TorchModel.check_inputs`), and is described, converted and
    probed then.
    """
    source = resolve_source(obj, options)
    try:
        return assemble(source, options, adapter)
    except RowShapeUnknown as exc:
        return _torch_model(source, options, adapter, source.module,
                            input_spec=InputSpec((), options.dtype, _modality(options)),
                            bind=functools.partial(_bind, source, options, adapter, str(exc)))


class RowShapeUnknown(ModelLoadError):
    """A single-input module whose row shape only the data can tell."""


def _bind(source: Source, options: TorchOptions, adapter: str, hint: str,
          row_shape: tuple[int, ...]) -> TorchModel:
    """The model for rows shaped ``row_shape``; a failure says that shape was taken from the
    rows, with ``hint`` (what the first layer says about the input)."""
    try:
        return assemble(source, options, adapter, row_shape)
    except ModelLoadError as exc:
        raise ModelLoadError(f"{exc} (rows shaped {row_shape} were taken as the row shape; "
                             f"{hint})") from None


# -------------------------------------------------------------------- assembling


@dataclass
class Layout:
    """Names, row shapes and integer-ness of the forward's inputs."""

    names: list[str]
    shapes: list[tuple[int, ...]]
    integer: list[bool]
    origin: str


def _capability_reasons(layered: bool, randomizable: bool) -> dict[str, str]:
    """Why the model lacks ``layers`` or ``randomization``, for the host's refusals."""
    reasons = {}
    if not layered:
        reasons["layers"] = ("a torch.export program is a flat graph without named layers; "
                             "load the nn.Module or TorchScript instead")
    if not randomizable:
        reasons["randomization"] = "the module has no layer with parameters to re-initialise"
    return reasons


def assemble(source: Source, options: TorchOptions, adapter: str,
             row_shape: tuple[int, ...] | None = None) -> TorchModel:
    """Convert ``source``'s module to the device and dtype, describe its inputs, probe it.

    ``row_shape``: the shape of the first rows given, for a module that does not fix it.
    """
    layout = infer_layout(source, options, row_shape)
    device, dtype = _device(options.device), getattr(torch, options.dtype)
    module, state_hash = _prepared(source, device, dtype)
    modalities = _modalities(options, layout)
    specs = []
    for i, shape in enumerate(layout.shapes):
        names = tuple(options.feature_names) if options.feature_names and i == 0 else None
        if names is not None and (len(shape) != 1 or len(names) != shape[0]):
            raise ModelLoadError(f"feature_names has {len(names)} names but the input's rows "
                                 f"are shaped {shape}")
        kind = "int64" if layout.integer[i] else options.dtype
        specs.append(InputSpec(shape, kind, modalities[i], names))
    model = _torch_model(
        source, options, adapter, module, input_spec=specs[0], device=device, dtype=dtype,
        input_names=tuple(layout.names), input_specs=tuple(specs),
        differentiable_inputs=tuple(not i for i in layout.integer),
        state_hash=source.state_hash or state_hash)
    n_outputs = probe(model, layout.origin)
    given = options.output_names
    if given is not None and len(given) != n_outputs:
        raise ModelLoadError(f"output_names has {len(given)} name(s) but the model gives "
                             f"{n_outputs} output(s)")
    model.output_names = tuple(given) if given else default_output_names(n_outputs)
    return model


def _torch_model(source: Source, options: TorchOptions, adapter: str, module: Any,
                 **fields: Any) -> TorchModel:
    """The :class:`TorchModel` of ``module``; ``fields`` describe its inputs."""
    return TorchModel(
        name=options.name or source.label, adapter=adapter,
        task=options.task or ("regression" if options.output == "identity" else "classification"),
        output_names=(), framework="torch", framework_version=torch.__version__,
        capabilities=frozenset({"predict", "gradients", *(["layers"] if source.layered else []),
                                *(["randomization"] if parameter_layers(module) else [])}),
        module=module, output=options.output, output_key=_key(options.output_key),
        max_batch=options.max_batch, fixed_batch=source.fixed_batch, layered=source.layered,
        file_hash=source.file_hash,
        capability_reasons=_capability_reasons(source.layered, bool(parameter_layers(module))),
        **fields)


def _key(key: int | str | list[int | str] | None) -> tuple[int | str, ...]:
    if key is None:
        return ()
    return tuple(key) if isinstance(key, list) else (key,)


def _device(name: str) -> Any:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ModelLoadError(f"device {name!r} is not a torch device: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {name!r} asked for, but CUDA is not available here")
    return device


def _prepared(source: Source, device: Any, dtype: Any) -> tuple[Any, str | None]:
    """The module in eval mode on ``device``/``dtype``; a user's module is copied, not changed.

    Returns the state hash taken before a conversion, so the fingerprint names the model, not
    the dtype it ran in.
    """
    module = source.module
    tensors = [*module.parameters(), *module.buffers()]
    converts = any(t.device != device or (t.is_floating_point() and t.dtype != dtype)
                   for t in tensors)
    state_hash = None
    if converts and not source.owned:
        state_hash = None if source.file_hash else module_sha256(module)
        module = copy.deepcopy(module)
    if converts:
        module = module.to(device=device, dtype=dtype)
    with contextlib.suppress(NotImplementedError):  # exported programs: mode fixed at export
        module.eval()
    return module, state_hash


def infer_layout(source: Source, options: TorchOptions,
                 row_shape: tuple[int, ...] | None = None) -> Layout:
    """Input names, row shapes and dtypes from options, the export record, the first layer or
    (``row_shape``) the first rows given."""
    shapes: list[tuple[int, ...] | None] = list(_given_shapes(options.feature_shape))
    names, required = _forward_names(source)
    count = (len(shapes) or (len(options.input_names) if options.input_names else 0)
             or len(source.names) or max(1, required))
    input_names = list(options.input_names or source.names or names[:count])
    input_names += [f"input_{i}" for i in range(len(input_names), count)]
    for what, value in (("input_names", input_names), ("input_dtypes", options.input_dtypes),
                        ("feature_shape", shapes or None)):
        if value is not None and len(value) != count:
            raise ModelLoadError(f"{what} describes {len(value)} input(s) but the model takes "
                                 f"{count} ({', '.join(input_names)})")
    origin = "given as feature_shape"
    integer = [d == "int64" for d in options.input_dtypes] if options.input_dtypes else None
    if not shapes and source.shapes and all(s is not None for s in source.shapes):
        shapes, origin = list(source.shapes), "recorded in the exported program"
    if not shapes and row_shape is not None and count == 1:
        shapes, origin = [row_shape], "taken from the first rows given"
    if not shapes:
        shape, origin, ids = _from_first_layer(source.module, count, input_names)
        shapes = [shape]
        integer = integer or [ids]
    if integer is None:
        integer = list(source.integer) if source.integer else [
            _first_layer_kind(source.module)[2] == "Embedding" and count == 1] * count
    return Layout(input_names, [s for s in shapes if s is not None], integer, origin)


def _given_shapes(given: list[int] | list[list[int]] | None) -> list[tuple[int, ...]]:
    rows: list[Any] = list(given or [])
    if rows and all(isinstance(r, list) for r in rows):
        return [tuple(int(d) for d in r) for r in rows]
    return [tuple(int(d) for d in rows)] if given is not None else []


def _forward_names(source: Source) -> tuple[list[str], int]:
    forward = source.module.forward
    schema = getattr(forward, "schema", None)
    if schema is not None:  # TorchScript: the first argument is self
        arguments = list(schema.arguments)[1:]
        return [a.name for a in arguments], sum(not a.has_default_value() for a in arguments)
    try:
        parameters = inspect.signature(forward).parameters.values()
    except (TypeError, ValueError):
        return [], 1
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return [p.name for p in positional], sum(p.default is p.empty for p in positional)


def _first_layer_kind(module: Any) -> tuple[Any, str, str]:
    for name, sub in module.named_modules():
        if next(iter(sub.children()), None) is None:  # a leaf (the root when it has no children)
            kind = getattr(sub, "original_name", None)
            return sub, name, kind if isinstance(kind, str) else type(sub).__name__
    return None, "", ""


def _from_first_layer(module: Any, count: int, names: list[str]) -> tuple[
        tuple[int, ...], str, bool]:
    if count > 1:
        raise ModelLoadError(f"the model takes {count} inputs ({', '.join(names)}); give one "
                             "row shape per input: feature_shape=[[...], [...]]")
    layer, name, kind = _first_layer_kind(module)
    in_features = getattr(layer, "in_features", 0)
    if kind == "Linear" and isinstance(in_features, int) and in_features > 0:
        where = f"the first layer {name}" if name else "the module"
        return (in_features,), f"inferred from {where} (Linear)", False
    if kind.startswith("Conv"):
        channels = getattr(layer, "in_channels", "C")
        dims = {"1": "L", "3": "D, H, W"}.get(kind[4:5], "H, W")
        hint = (f"its first layer {name or '(the module itself)'} is {kind} with {channels} "
                "input channels, which does not fix the input size; give "
                f"feature_shape=[{channels}, {dims}]")
    elif kind == "Embedding":
        hint = (f"its first layer {name} is an Embedding (token ids), which does not fix the "
                "sequence length; give feature_shape=[sequence_length]")
    else:
        hint = (f"its first layer {name or '(the module itself)'} is {kind or 'not found'}; "
                "only a first Linear layer fixes it; give feature_shape (one row's shape)")
    raise RowShapeUnknown(f"cannot infer the input shape of {type(module).__name__}: {hint}")


def _modality(options: TorchOptions) -> Modality:
    """The declared modality of a single-input model (tabular until its rows are seen)."""
    return options.modality if isinstance(options.modality, str) else "tabular"


def _modalities(options: TorchOptions, layout: Layout) -> list[Modality]:
    given = options.modality
    if isinstance(given, list):
        if len(given) != len(layout.shapes):
            raise ModelLoadError(f"modality lists {len(given)} value(s) for "
                                 f"{len(layout.shapes)} input(s)")
        return list(given)
    if given is not None:
        return [given] * len(layout.shapes)
    return ["text" if ids else "image" if len(shape) == 3 else "tabular"
            for shape, ids in zip(layout.shapes, layout.integer, strict=True)]


# -------------------------------------------------------------------- probe


def probe(model: TorchModel, origin: str, rows: int = 8) -> int:
    """Run the model twice on a seeded probe batch; return its number of outputs.

    Raises ModelLoadError for a failing forward (naming the shapes tried), an unusable output
    and an output that changes between the two calls.
    """
    generator = torch.Generator().manual_seed(0)
    inputs = []
    for spec in model.input_specs:
        shape = (rows, *spec.feature_shape)
        tensor = (torch.randint(0, 2, shape, generator=generator) if spec.dtype == "int64"
                  else torch.randn(shape, generator=generator, dtype=model.dtype))
        inputs.append(tensor.to(model.device))
    shapes = ", ".join(str(tuple(t.shape)) for t in inputs)
    try:
        with torch.no_grad():
            first, second = model.torch_forward(*inputs), model.torch_forward(*inputs)
    except InputError as exc:
        raise ModelLoadError(f"model {model.name!r} failed on a probe batch shaped {shapes} "
                             f"(row shape {origin}): {exc}. Give feature_shape as the shape of "
                             "one input row the model accepts") from None
    if model.output == "softmax" and first.shape[1] == 1:
        raise ModelLoadError(f"model {model.name!r} has a single output, whose softmax is "
                             "always 1; use output='sigmoid' or 'logits'")
    if not torch.allclose(first, second, rtol=1e-5, atol=1e-6, equal_nan=True):
        diff = float((first - second).abs().nan_to_num(math.inf).max())
        training = [n or "(root)" for n, m in model.module.named_modules() if m.training]
        still = f"; modules still in training mode: {', '.join(training[:5])}" if (
            training and model.layered) else ""
        raise ModelLoadError(
            f"model {model.name!r} gave different outputs when called twice on the same input "
            f"(largest difference {diff:.3g}): its forward is random in eval mode{still}. The "
            "usual cause is dropout applied regardless of mode (F.dropout(x, training=True) in "
            "a custom forward, or a program exported in train mode). Explanations of a random "
            "model are not reproducible; make the forward deterministic in eval mode (use "
            "nn.Dropout or training=self.training; export after model.eval())")
    return int(first.shape[1])
