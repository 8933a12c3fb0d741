"""Export a model to TorchScript and ONNX, with its metadata inside the file, and verify it.

The exported graph returns only the depth (``DepthOnly`` wrapper): inputs ``rgb`` (B x 3 x H x W,
[0, 1]) and, for completion models, ``sparse`` (B x 1 x H x W metres); output ``depth``
(B x 1 x H x W metres). Batch, height and width are dynamic in both formats (the models pad to
their stride internally, and the padding is traced as shape arithmetic); ``input_size`` is only
the size of the example used for tracing and verification and is recorded in the metadata.

Metadata: one JSON object (the model file's meta -- ``input_size``, ``depth_range``, ``kind`` -- plus
architecture, I/O names, format) stored under the key ``lumde_meta``: in ONNX ``metadata_props``
(onnxruntime: ``get_modelmeta().custom_metadata_map["lumde_meta"]``), in TorchScript as the extra
file ``lumde_meta.json``. Read either with :func:`read_export_meta`.
"""
from __future__ import annotations

import contextlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch

from lumde_depth import __version__
from lumde_depth.engine.profile import example_inputs, input_names, takes_sparse
from lumde_depth.models.io import unwrap

FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}  # never a bare .pt: that is a model file
DEFAULT_OPSET = 17
META_KEY = "lumde_meta"
TORCHSCRIPT_META_FILE = "lumde_meta.json"
QUANTIZED_OPS = ("Conv", "ConvTranspose")


class ExportError(RuntimeError):
    """An export failed or does not reproduce the PyTorch model."""


class DepthOnly(torch.nn.Module):
    """Wraps a lumde model so its forward returns the depth tensor only (what deployment needs)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = unwrap(model)
        self.name = getattr(self.model, "arch_name", type(self.model).__name__)
        if input_names(self.model) not in (["rgb"], ["rgb", "sparse"]):
            raise ExportError(f"'{self.name}' takes {input_names(self.model)}: only depth networks, forward(rgb) or "
                              "forward(rgb, sparse), can be exported")
        self.completion = takes_sparse(self.model)

    def forward(self, rgb: torch.Tensor, sparse: torch.Tensor | None = None) -> torch.Tensor:
        out = self.model(rgb, sparse) if self.completion else self.model(rgb)
        if not isinstance(out, dict) or "depth" not in out:
            raise ExportError(f"'{self.name}' does not return a dict with 'depth': only depth networks "
                              "(completion or monocular) can be exported")
        return out["depth"]


@dataclass
class ExportResult:
    """One exported file and how closely it reproduces PyTorch on a random input."""

    format: str
    path: Path
    max_abs_diff: float
    max_rel_diff: float

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "path": str(self.path), "max_abs_diff": self.max_abs_diff,
                "max_rel_diff": self.max_rel_diff}


def export_meta(model: torch.nn.Module, input_size: Sequence[int], meta: dict[str, Any] | None = None,
                **extra: Any) -> dict[str, Any]:
    """The metadata written into an exported file: the model file's meta plus architecture and I/O."""
    bare = unwrap(model)
    completion = takes_sparse(bare)
    info: dict[str, Any] = {"kind": "completion" if completion else "monocular", **(meta or {}),
                            "arch": getattr(bare, "arch_name", type(bare).__name__),
                            "arch_kwargs": getattr(bare, "arch_kwargs", {}),
                            "input_size": [int(s) for s in input_size],
                            "inputs": ["rgb", "sparse"] if completion else ["rgb"], "outputs": ["depth"],
                            "dynamic_axes": ["batch", "height", "width"], "lumde_depth": __version__, **extra}
    return json.loads(json.dumps(info))  # plain JSON types only (tuples -> lists)


def export_torchscript(model: torch.nn.Module, path: str | Path, input_size: Sequence[int],
                       meta: dict[str, Any] | None = None) -> Path:
    """Trace ``model`` (depth output only) and save it with ``lumde_meta.json`` inside the archive."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = DepthOnly(model).eval()
    inputs = example_inputs(wrapper.model, input_size)
    files = {TORCHSCRIPT_META_FILE: json.dumps(export_meta(model, input_size, meta, format="torchscript"))}
    with torch.no_grad(), _quiet_jit():
        traced = torch.jit.trace(wrapper, inputs, check_trace=False)
        torch.jit.save(traced, str(path), _extra_files=files)
    return path


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    """Silence the tracer's shape warnings (the traced shape arithmetic is what makes the axes
    dynamic) and torch's deprecation notice for TorchScript, which stays a supported format here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def export_onnx(model: torch.nn.Module, path: str | Path, input_size: Sequence[int],
                meta: dict[str, Any] | None = None, opset: int = DEFAULT_OPSET) -> Path:
    """Export ``model`` (depth output only) to ONNX with dynamic batch/height/width and metadata."""
    import onnx
    if opset < 17:
        raise ValueError(f"ONNX opset must be >= 17, got {opset}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = DepthOnly(model).eval()
    inputs = example_inputs(wrapper.model, input_size)
    names = ["rgb", "sparse"][:len(inputs)]
    axes = {n: {0: "batch", 2: "height", 3: "width"} for n in [*names, "depth"]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, inputs, str(path), dynamo=False, opset_version=opset, input_names=names,
                          output_names=["depth"], dynamic_axes=axes, do_constant_folding=True)
    proto = onnx.load(str(path))
    proto.metadata_props.add(key=META_KEY, value=json.dumps(export_meta(model, input_size, meta, format="onnx",
                                                                         opset=opset)))
    onnx.save(proto, str(path))
    return path


def quantize_onnx(src: str | Path, dst: str | Path, feeds: Iterable[dict[str, np.ndarray]],
                  ops: Sequence[str] | None = QUANTIZED_OPS) -> Path:
    """Static INT8 quantization of an exported ONNX model (onnxruntime, QDQ: per-channel int8 weights,
    uint8 activations), calibrated on ``feeds``: the network's own inputs by name (``rgb``, ``sparse``;
    ``DepthCompleter.network_inputs`` makes them). ``ops``: the operator types quantized (None: every
    one onnxruntime can). The ``lumde_meta`` metadata is carried over with ``quantization`` added.

    Whether it pays is measured, not assumed (``bench/int8.py``): narrow networks can run slower in
    int8 than in fp32 (quantize / dequantize steps cost more than the narrow convolutions save).
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, dst = Path(src), Path(dst)
    meta = read_export_meta(src)
    batches = iter(list(feeds))

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(batches, None)

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f"{dst.stem}.tmp.onnx")
    quant_pre_process(str(src), str(tmp), skip_symbolic_shape=True)  # graph optimised, shapes inferred
    quantize_static(str(tmp), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=list(ops) if ops else None)
    proto = onnx.load(str(tmp))
    del proto.metadata_props[:]
    proto.metadata_props.add(key=META_KEY, value=json.dumps({**meta, "quantization": {
        "type": "int8 static QDQ", "ops": list(ops) if ops else "all"}}))
    onnx.save(proto, str(dst))
    tmp.unlink()
    return dst


def read_export_meta(path: str | Path) -> dict[str, Any]:
    """The metadata of an exported ``.onnx`` or TorchScript file; an error if it has none."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"exported model not found: {path}")
    if path.suffix == ".onnx":
        import onnx
        text = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}.get(META_KEY)
    else:
        files = {TORCHSCRIPT_META_FILE: ""}
        with _quiet_jit():
            torch.jit.load(str(path), map_location="cpu", _extra_files=files)
        text = files[TORCHSCRIPT_META_FILE] or None
    if text is None:
        raise ExportError(f"{path}: no '{META_KEY}' metadata; export the model with `lumde export`")
    return json.loads(text)


def run_exported(path: str | Path, inputs: Sequence[torch.Tensor]) -> np.ndarray:
    """Run an exported file on CPU: onnxruntime for ``.onnx``, ``torch.jit.load`` otherwise."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnxruntime as ort
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {i.name: t.cpu().numpy() for i, t in zip(session.get_inputs(), inputs)}
        return session.run(["depth"], feeds)[0]
    with _quiet_jit():
        module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return module(*inputs).numpy()


def verify_export(path: str | Path, model: torch.nn.Module, input_size: Sequence[int],
                  seed: int = 1) -> tuple[float, float]:
    """(max abs, max relative) difference of the exported depth against PyTorch on a random input.

    Relative = max |exported - torch| / max |torch|. The input size may differ from the one used
    for export, which checks the dynamic axes too.
    """
    wrapper = DepthOnly(model).eval()
    inputs = example_inputs(wrapper.model, input_size, seed=seed)
    with torch.no_grad():
        expected = wrapper(*inputs).numpy()
    got = run_exported(path, inputs)
    if got.shape != expected.shape:
        raise ExportError(f"{path}: output shape {got.shape} differs from PyTorch's {expected.shape}")
    diff = float(np.abs(got - expected).max())
    return diff, diff / max(float(np.abs(expected).max()), 1e-12)


def export_model(model: torch.nn.Module, out_dir: str | Path, formats: Iterable[str] = FORMATS,
                 input_size: Sequence[int] = (352, 1216), meta: dict[str, Any] | None = None,
                 name: str = "model", opset: int = DEFAULT_OPSET,
                 verify_size: Sequence[int] | None = None) -> list[ExportResult]:
    """Export ``model`` to each of ``formats`` in ``out_dir`` and verify each against PyTorch.

    ``verify_size`` (default: ``input_size``) is the input used for the comparison.
    """
    formats = list(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown export format(s) {unknown}; choose from {list(FORMATS)}")
    model = unwrap(model).eval()
    results = []
    for fmt in formats:
        path = Path(out_dir) / f"{name}{SUFFIX[fmt]}"
        if fmt == "onnx":
            export_onnx(model, path, input_size, meta, opset)
        else:
            export_torchscript(model, path, input_size, meta)
        abs_diff, rel_diff = verify_export(path, model, verify_size or input_size)
        results.append(ExportResult(fmt, path, abs_diff, rel_diff))
    return results
