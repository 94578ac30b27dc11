"""Assembling an :class:`~xaudit.adapters.onnx.model.OnnxModel`: session, inputs, output, torch.

Steps: read and validate the model (:mod:`~xaudit.adapters.onnx.source`); open an onnxruntime
session on the chosen execution provider; describe each graph input (name, element type, row
shape, batch axis, modality, layout); select the graph output; run a seeded probe batch through
onnxruntime, which fixes the number of outputs; then convert the graph to torch and offer
gradients only if the conversion reproduces onnxruntime's outputs on that probe batch.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import numpy as np

from xaudit.adapters.onnx.layout import graph_layout, shape_layout
from xaudit.adapters.onnx.model import Layout, OnnxInputSpec, OnnxModel
from xaudit.adapters.onnx.options import OnnxOptions
from xaudit.adapters.onnx.source import Source, read_source
from xaudit.errors import ModelLoadError
from xaudit.model import Modality, Task, default_output_names

PROBE_ROWS = 3
PROBE_SEED = 0
RTOL = ATOL = 1e-5
"""Tolerance of the check of the torch conversion against onnxruntime."""
CLASSIFIER_HEADS = frozenset({"Softmax", "Sigmoid", "LogSoftmax"})


def load_onnx_model(obj: object, options: OnnxOptions, adapter: str) -> OnnxModel:
    """Adapt ``obj`` (path or ModelProto) into a checked :class:`OnnxModel`."""
    import onnxruntime

    source = read_source(obj)
    session, providers = open_session(source, options.device)
    inputs = describe_inputs(source.proto.graph, options)
    fixed = _fixed_batch(inputs)
    names = [o.name for o in source.proto.graph.output]
    index = select_output(names, options.output_key)
    _refuse_double_transform(source.proto.graph, names[index], options.output)
    probe_inputs = make_probe(inputs, fixed or PROBE_ROWS)
    probe_outputs = _run_probe(session, inputs, probe_inputs, source.name)
    n_outputs = _output_width(probe_outputs[index], names[index], fixed or PROBE_ROWS)
    model = OnnxModel(
        name=options.name or source.name, adapter=adapter,
        task=options.task or _task(source.proto.graph, names[index], options.output, n_outputs),
        input_spec=inputs[0].spec, output_names=_output_names(options, n_outputs),
        framework="onnx", framework_version=f"onnxruntime {onnxruntime.__version__}",
        session=session, input_names=tuple(i.name for i in inputs),
        input_specs=tuple(i.spec for i in inputs), graph_outputs=tuple(names),
        output_index=index, output=options.output, max_batch=options.max_batch,
        fixed_batch=fixed, file_hash=source.sha256, providers=tuple(providers),
        producer=f"{source.proto.producer_name} {source.proto.producer_version}".strip(),
        opset=_opset(source.proto), node_count=len(source.proto.graph.node),
        initializer_count=len(source.proto.graph.initializer),
    )
    if options.gradients:
        attach_torch(model, source.proto, probe_inputs, probe_outputs, options.device)
    else:
        model.gradient_status = "the torch conversion was switched off (gradients: false)"
    model.capability_reasons = {
        "layers": "an ONNX graph has no named torch layers to hook; adapt the original "
                  "PyTorch module with the torch adapter for layer methods",
        **({} if "gradients" in model.capabilities else {"gradients": model.gradient_status}),
    }
    return model


def open_session(source: Source, device: str) -> tuple[Any, list[str]]:
    """An onnxruntime session on CUDA (when present and allowed) or CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    cuda = "CUDAExecutionProvider" in available
    providers: list[Any]
    if device == "cpu" or (device == "auto" and not cuda):
        providers = ["CPUExecutionProvider"]
    elif device == "auto" or device.startswith("cuda"):
        if not cuda:
            raise ModelLoadError(f"device {device!r} needs onnxruntime's CUDAExecutionProvider, "
                                 f"which this onnxruntime lacks (it has {', '.join(available)}); "
                                 "install onnxruntime-gpu or use device: cpu")
        device_id = int(device.split(":")[1]) if ":" in device else 0
        providers = [("CUDAExecutionProvider", {"device_id": device_id}), "CPUExecutionProvider"]
    else:
        raise ModelLoadError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    settings = ort.SessionOptions()
    settings.log_severity_level = 3
    model: Any = str(source.path) if source.external else source.data
    try:
        session = ort.InferenceSession(model, sess_options=settings, providers=providers)
    except Exception as exc:
        raise ModelLoadError(f"onnxruntime cannot load {source.name}: {_first_line(exc)}") from None
    return session, list(session.get_providers())


# -------------------------------------------------------------------- inputs


@dataclass
class GraphInput:
    """One graph input: its name, batch axis (an int when fixed) and the xaudit spec."""

    name: str
    batch: int | None
    spec: OnnxInputSpec
    elem_type: int


def describe_inputs(graph: Any, options: OnnxOptions) -> list[GraphInput]:
    """Each graph input (initializers excluded) as read from its declared type and shape."""
    from onnx import helper

    constant = {init.name for init in graph.initializer}
    values = [v for v in graph.input if v.name not in constant]
    if not values:
        raise ModelLoadError("the ONNX graph has no inputs")
    shapes = _given_shapes(options.feature_shape, len(values))
    modalities = _given_modalities(options.modality, len(values))
    described = []
    for i, value in enumerate(values):
        if not value.type.HasField("tensor_type"):
            raise ModelLoadError(f"graph input {value.name!r} is not a tensor; only tensor "
                                 "inputs are supported")
        tensor = value.type.tensor_type
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name
        dims = ([d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
                if tensor.HasField("shape") else None)
        batch, row = _row_shape(value.name, dims, shapes[i])
        modality = modalities[i] or _modality(row, dtype)
        layout, origin = _layout(graph, value.name, row, options.layout)
        names = None
        if options.feature_names is not None:
            if len(values) != 1 or len(row) != 1 or len(options.feature_names) != row[0]:
                raise ModelLoadError(f"feature_names has {len(options.feature_names)} names but "
                                     f"input {value.name!r} has rows shaped {row}")
            names = tuple(options.feature_names)
        spec = OnnxInputSpec(row, dtype, modality, names, layout, origin)
        described.append(GraphInput(value.name, batch, spec, tensor.elem_type))
    if options.layout != "auto" and not any(len(g.spec.feature_shape) == 3
                                            for g in described):
        raise ModelLoadError(f"layout {options.layout!r} applies to image inputs (rows of rank "
                             "3), and this model has none")
    return described


def _row_shape(name: str, dims: list[int | None] | None,
               given: list[int] | None) -> tuple[int | None, tuple[int, ...]]:
    if dims is not None and not dims:
        raise ModelLoadError(f"graph input {name!r} is a scalar; xaudit needs a batch axis")
    batch = dims[0] if dims else None
    declared = dims[1:] if dims is not None else None
    if given is not None:
        if declared is not None and (len(given) != len(declared) or any(
                d is not None and d != g for d, g in zip(declared, given, strict=True))):
            raise ModelLoadError(f"feature_shape {given} does not fit graph input {name!r}, "
                                 f"whose rows are shaped {_show(declared)}")
        return batch, tuple(given)
    if declared is None or any(d is None for d in declared):
        raise ModelLoadError(f"graph input {name!r} has rows shaped {_show(declared)}; give "
                             "their shape with feature_shape")
    return batch, tuple(int(d) for d in declared if d is not None)


def _show(dims: list[int | None] | None) -> str:
    if dims is None:
        return "unknown"
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"


def _given_shapes(given: list[int] | list[list[int]] | None,
                  count: int) -> list[list[int] | None]:
    if given is None:
        return [None] * count
    if all(isinstance(g, int) for g in given):
        if count != 1:
            raise ModelLoadError(f"the graph has {count} inputs: give feature_shape as one "
                                 "shape per input")
        return [[int(g) for g in given]]  # type: ignore[arg-type]
    if len(given) != count:
        raise ModelLoadError(f"feature_shape gives {len(given)} shapes for {count} inputs")
    return [list(g) for g in given]  # type: ignore[arg-type]


def _given_modalities(given: Modality | list[Modality] | None,
                      count: int) -> list[Modality | None]:
    if given is None or isinstance(given, str):
        return [given] * count
    if len(given) != count:
        raise ModelLoadError(f"modality gives {len(given)} values for {count} inputs")
    return list(given)


def _modality(row: tuple[int, ...], dtype: str) -> Modality:
    if dtype.startswith(("int", "uint")):
        return "text"
    return {1: "tabular", 2: "sequence", 3: "image"}.get(len(row), "other")  # type: ignore[return-value]


def _layout(graph: Any, name: str, row: tuple[int, ...],
            stated: str) -> tuple[Layout | None, str]:
    if len(row) != 3:
        return None, ""
    shown = graph_layout(graph, name)
    if stated != "auto":
        if shown is not None and shown != stated:
            raise ModelLoadError(
                f"layout {stated!r} was given, but the graph takes input {name!r} as {shown} "
                f"(rows shaped {row}); set layout: {shown} or auto. xaudit does not transpose "
                "data: give rows in the layout the model takes")
        return stated, "option"  # type: ignore[return-value]
    if shown is not None:
        return shown, "graph"
    guessed = shape_layout(row)
    return guessed, "shape" if guessed else "undetermined"


def _fixed_batch(inputs: list[GraphInput]) -> int | None:
    fixed = {i.batch for i in inputs if i.batch is not None and i.batch > 0}
    if len(fixed) > 1:
        raise ModelLoadError(f"graph inputs fix different batch sizes ({sorted(fixed)})")
    return fixed.pop() if fixed else None


# -------------------------------------------------------------------- output


def select_output(names: list[str], key: int | str | None) -> int:
    """Index of the graph output chosen by ``output_key`` (the only one when not given)."""
    if key is None:
        if len(names) > 1:
            raise ModelLoadError(f"the graph has {len(names)} outputs ({', '.join(names)}); "
                                 "choose one with output_key (name or index)")
        return 0
    if isinstance(key, int):
        if not -len(names) <= key < len(names):
            raise ModelLoadError(f"output_key {key} is out of range: the graph has "
                                 f"{len(names)} output(s) ({', '.join(names)})")
        return key % len(names)
    if key not in names:
        close = difflib.get_close_matches(key, names, n=3)
        hint = f"did you mean {', '.join(map(repr, close))}?" if close else (
            f"outputs: {', '.join(names)}")
        raise ModelLoadError(f"the graph has no output {key!r}; {hint}")
    return names.index(key)


def _head(graph: Any, output: str) -> str:
    producers = {out: node for node in graph.node for out in node.output}
    node = producers.get(output)
    while node is not None and node.op_type in ("Identity", "Cast", "Reshape", "Flatten"):
        node = producers.get(node.input[0])
    return node.op_type if node is not None else ""


def _refuse_double_transform(graph: Any, output: str, transform: str) -> None:
    head = _head(graph, output)
    if (transform, head) in (("softmax", "Softmax"), ("sigmoid", "Sigmoid")):
        raise ModelLoadError(f"graph output {output!r} already ends in {head}; output: "
                             f"{transform} would apply it twice. Use output: identity")


def _task(graph: Any, output: str, transform: str, n_outputs: int) -> Task:
    if transform != "identity" or _head(graph, output) in CLASSIFIER_HEADS:
        return "classification"
    return "regression" if n_outputs == 1 else "other"


def _output_width(array: np.ndarray, name: str, rows: int) -> int:
    if array.ndim == 0 or array.shape[0] != rows:
        raise ModelLoadError(f"graph output {name!r} is shaped {array.shape} for {rows} input "
                             "rows; xaudit needs one output row per input row")
    trailing = [d for d in array.shape[1:] if d != 1]
    if len(trailing) > 1:
        raise ModelLoadError(f"graph output {name!r} is shaped {array.shape} for "
                             f"{array.shape[0]} rows; xaudit needs (n_rows, n_outputs)")
    return trailing[0] if trailing else 1


def _output_names(options: OnnxOptions, n_outputs: int) -> tuple[str, ...]:
    if options.output_names is None:
        return default_output_names(n_outputs)
    if len(options.output_names) != n_outputs:
        raise ModelLoadError(f"output_names has {len(options.output_names)} name(s) but the "
                             f"selected graph output has {n_outputs} value(s) per row")
    return tuple(options.output_names)


# -------------------------------------------------------------------- probe and torch


def make_probe(inputs: list[GraphInput], rows: int) -> list[np.ndarray]:
    """A seeded batch: standard normal floats, 0/1 integers and booleans."""
    rng = np.random.default_rng(PROBE_SEED)
    arrays = []
    for graph_input in inputs:
        shape, dtype = (rows, *graph_input.spec.feature_shape), np.dtype(graph_input.spec.dtype)
        if dtype.kind == "f":
            arrays.append(rng.standard_normal(shape).astype(dtype))
        elif dtype.kind == "b":
            arrays.append(rng.random(shape) < 0.5)
        else:
            arrays.append(rng.integers(0, 2, shape).astype(dtype))
    return arrays


def _run_probe(session: Any, inputs: list[GraphInput], arrays: list[np.ndarray],
               name: str) -> list[np.ndarray]:
    feeds = {i.name: a for i, a in zip(inputs, arrays, strict=True)}
    try:
        return [np.asarray(out) for out in session.run(None, feeds)]
    except Exception as exc:
        shapes = ", ".join(f"{k}: {v.shape}" for k, v in feeds.items())
        raise ModelLoadError(f"onnxruntime failed to run {name} on a probe batch ({shapes}): "
                             f"{_first_line(exc)}") from None


def attach_torch(model: OnnxModel, proto: Any, probe_inputs: list[np.ndarray],
                 probe_outputs: list[np.ndarray], device: str) -> None:
    """Convert the graph to torch and offer ``gradients`` if it reproduces onnxruntime."""
    try:
        import torch
    except ImportError:
        model.gradient_status = "gradients need PyTorch: pip install 'xaudit[torch]'"
        return
    from xaudit.adapters.onnx.to_torch import UnsupportedGraphError, convert, full_precision, verify

    try:
        module = convert(proto)
    except UnsupportedGraphError as exc:
        model.gradient_status = f"the graph was not converted to torch: {exc}"
        return
    chosen = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                          "cpu" if device == "auto" else device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        model.gradient_status = f"device {device!r} asked for, but torch has no CUDA"
        return
    module = module.to(chosen).eval()
    tensors = [torch.as_tensor(a).to(chosen) for a in probe_inputs]
    with full_precision(chosen):
        check = verify(module, tensors, probe_outputs, rtol=RTOL, atol=ATOL)
    model.conversion_check = check.to_dict()
    if not check.passed:
        model.gradient_status = ("the torch conversion does not reproduce onnxruntime on a "
                                 f"probe batch: {check.detail}")
        return
    floats = [t.dtype for t in tensors if t.dtype.is_floating_point]
    model.torch_module, model.device = module, chosen
    model.dtype = floats[0] if floats else torch.float32
    model.differentiable_inputs = tuple(t.dtype.is_floating_point for t in tensors)
    checked = (f"torch conversion checked against onnxruntime on {check.rows} probe rows: max "
               f"abs difference {check.max_abs_diff:.3g} (tolerance {ATOL:g} + "
               f"{RTOL:g}*|value|)")
    if not floats:
        model.gradient_status = (f"{checked}, but no input is floating-point, so there is "
                                 "nothing to differentiate with respect to")
        return
    model.capabilities = frozenset(model.capabilities | {"gradients"})
    model.gradient_status = checked


def _opset(proto: Any) -> int:
    for entry in proto.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
