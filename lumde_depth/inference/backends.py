"""Inference backends: one network run on preallocated network-sized buffers.

A backend owns its input and output buffers, sized once for the network's input size, so a frame
costs no allocation outside the network itself: the caller writes the normalised image and the
sparse depth into :attr:`Backend.rgb` / :attr:`Backend.sparse` and calls :meth:`Backend.run`,
which returns a view of the output buffer (valid until the next run).

* :class:`TorchBackend`: a PyTorch module on CUDA or CPU. On CPU the buffers are the tensors'
  own memory (``torch.from_numpy``), on CUDA they are copied in and out through fixed tensors.
* :class:`OnnxBackend`: onnxruntime with IO binding on CPU ``OrtValue``s that share the numpy
  buffers' memory.

``backend="auto"`` (see :func:`candidate_backends`): torch on CUDA when a GPU is present; on CPU
both torch and onnxruntime are built and timed once at load (:func:`fastest`), because which one
wins depends on the architecture (onnxruntime's depthwise convolutions are slow, so the depthwise-
separable CDSPN runs faster in PyTorch) and on the machine.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

import numpy as np
import torch


class Backend(Protocol):
    """What :class:`~lumde_depth.inference.DepthCompleter` needs from a backend."""

    name: str
    device: str
    rgb: np.ndarray      # (1, 3, h, w) float32, the network's normalised image input
    sparse: np.ndarray   # (1, 1, h, w) float32 metres (unused by monocular networks)

    def run(self) -> np.ndarray:
        """Run the network on the buffers; returns the (h, w) float32 depth (a view)."""
        ...


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is usable, else ``cpu``; other values are checked."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device '{device}' requested but CUDA is not available here; use device='cpu' or 'auto'")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"unknown device '{device}': use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    return device


BACKENDS = ("auto", "torch", "onnxruntime", "classical", "nearest")
"""Backend names ``DepthCompleter.load`` takes; ``classical`` (IP-Basic) and ``nearest`` need no model."""


def candidate_backends(backend: str, device: str) -> list[str]:
    """The backends ``backend`` may turn into: itself, or for ``auto`` torch on CUDA, and on CPU
    torch and (when importable) onnxruntime, between which :func:`fastest` decides by timing."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}': use one of {', '.join(map(repr, BACKENDS))}")
    if backend == "onnxruntime" and not onnxruntime_available():
        raise ValueError("backend 'onnxruntime' requested but onnxruntime is not installed "
                         "(pip install onnxruntime), or use backend='torch'")
    if backend != "auto":
        return [backend]
    if device.startswith("cuda") or not onnxruntime_available():
        return ["torch"]
    return ["torch", "onnxruntime"]


def set_inputs(backend: Backend, inputs: dict[str, np.ndarray]) -> None:
    """Write network inputs (``rgb``, and ``sparse`` for completion models, as
    ``DepthCompleter.network_inputs`` returns them) into the backend's buffers."""
    backend.rgb[...] = inputs["rgb"]
    if "sparse" in inputs:
        backend.sparse[...] = inputs["sparse"]


def median_times(backends: list[Backend], runs: int = 3) -> list[float]:
    """Median milliseconds of one run of each backend on its current buffers: ``runs`` runs,
    interleaved so that load on the machine hits every backend alike, after one warm-up run each."""
    times: list[list[float]] = [[] for _ in backends]
    for b in backends:
        b.run()
    for _ in range(runs):
        for b, t in zip(backends, times):
            t0 = time.perf_counter()
            b.run()
            t.append(1e3 * (time.perf_counter() - t0))
    return [float(np.median(t)) for t in times]


def fastest(backends: list[Backend], runs: int = 3) -> tuple[Backend, dict[str, float]]:
    """The backend with the lowest :func:`median_times`, and the medians in milliseconds by backend name."""
    medians = median_times(backends, runs)
    best = int(np.argmin(medians))
    return backends[best], {b.name: m for b, m in zip(backends, medians)}


class TorchBackend:
    """A completion (``model(rgb, sparse)``) or monocular (``model(rgb)``) PyTorch module."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, input_size: tuple[int, int], monocular: bool,
                 device: str = "cpu") -> None:
        self.device = device
        self.model = model.to(device).eval()
        self.monocular = monocular
        h, w = input_size
        self.rgb = np.zeros((1, 3, h, w), np.float32)
        self.sparse = np.zeros((1, 1, h, w), np.float32)
        self._out = np.zeros((h, w), np.float32)
        if device == "cpu":
            self._rgb_t, self._sparse_t = torch.from_numpy(self.rgb), torch.from_numpy(self.sparse)
            self._out_t = torch.from_numpy(self._out)
        else:
            self._rgb_t = torch.zeros(self.rgb.shape, device=device)
            self._sparse_t = torch.zeros(self.sparse.shape, device=device)
            self._out_t = torch.from_numpy(self._out)

    @torch.inference_mode()
    def run(self) -> np.ndarray:
        if self.device != "cpu":
            self._rgb_t.copy_(torch.from_numpy(self.rgb), non_blocking=True)
            self._sparse_t.copy_(torch.from_numpy(self.sparse), non_blocking=True)
        out = self.model(self._rgb_t) if self.monocular else self.model(self._rgb_t, self._sparse_t)
        self._out_t.copy_(out["depth"][0, 0])
        return self._out


class OnnxBackend:
    """An ONNX model run by onnxruntime on CPU through IO binding (no per-frame allocation)."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, input_size: tuple[int, int], threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: the optimiser's notes (unused initializers) are not faults
        if threads:
            options.intra_op_num_threads = threads
        # no busy-waiting between operators: the node's executor, DDS and worker threads share the cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.device = "cpu"
        h, w = input_size
        inputs = self.session.get_inputs()
        if len(inputs) not in (1, 2):
            raise ValueError(f"{path}: expected an ONNX graph with inputs (rgb) or (rgb, sparse), got "
                             f"{[i.name for i in inputs]}; export it with `lumde export`")
        self.monocular = len(inputs) == 1
        self.rgb = np.zeros((1, 3, h, w), np.float32)
        self.sparse = np.zeros((1, 1, h, w), np.float32)
        self._out = np.zeros((1, 1, h, w), np.float32)
        self._binding = self.session.io_binding()
        self._bind(inputs[0].name, self.rgb, is_input=True)
        if not self.monocular:
            self._bind(inputs[1].name, self.sparse, is_input=True)
        self._bind(self.session.get_outputs()[0].name, self._out, is_input=False)

    def _bind(self, name: str, array: np.ndarray, is_input: bool) -> None:
        bind = self._binding.bind_input if is_input else self._binding.bind_output
        bind(name, "cpu", 0, np.float32, list(array.shape), array.ctypes.data)

    def run(self) -> np.ndarray:
        self.session.run_with_iobinding(self._binding)
        return self._out[0, 0]
