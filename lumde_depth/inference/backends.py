"""Inference backends: one network run on preallocated network-sized buffers.

A backend owns its input and output buffers, sized once for the network's input size, so a frame
costs no allocation outside the network itself: the caller writes the normalised image and the
sparse depth into :attr:`Backend.rgb` / :attr:`Backend.sparse` and calls :meth:`Backend.run`,
which returns a view of the output buffer (valid until the next run). Several frames (several cameras
of one rig) go through the network in one run: :meth:`Backend.reserve` sizes the batch buffers
:attr:`Backend.batch_rgb` / :attr:`Backend.batch_sparse` (``rgb`` / ``sparse`` are their first item)
and :meth:`Backend.run_batch` runs the first ``n`` items.

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
    rgb: np.ndarray            # (1, 3, h, w) float32, the network's normalised image input (batch_rgb[:1])
    sparse: np.ndarray         # (1, 1, h, w) float32 metres (unused by monocular networks; batch_sparse[:1])
    batch_rgb: np.ndarray      # (capacity, 3, h, w) float32
    batch_sparse: np.ndarray   # (capacity, 1, h, w) float32
    input_size: tuple[int, int]   # (h, w) of the buffers
    any_size: bool                # whether the network runs at any input size (resize may change it)

    def run(self) -> np.ndarray:
        """Run the network on the buffers; returns the (h, w) float32 depth (a view)."""
        ...

    def resize(self, input_size: tuple[int, int]) -> None:
        """Make the buffers ``input_size`` ``(h, w)`` (reallocated only when it changes)."""
        ...

    def reserve(self, n: int) -> None:
        """Make the batch buffers hold at least ``n`` frames (reallocated, and ``rgb`` / ``sparse`` with them,
        only when they grow)."""
        ...

    def run_batch(self, n: int) -> np.ndarray:
        """Run the network on the first ``n`` frames of the batch buffers; returns their (n, h, w) depth (a view)."""
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
    ``DepthCompleter.network_inputs`` returns them) into the backend's buffers, resized to their size (with
    ``fit="aspect"`` frames of other cameras come at other sizes)."""
    backend.resize(inputs["rgb"].shape[-2:])
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


class _InputBuffers:
    """The network's input buffers, ``capacity`` frames deep; ``rgb`` / ``sparse`` are the first frame's
    views (what single-frame callers write). Subclasses add their output and device buffers in ``_allocate``."""

    input_size: tuple[int, int]
    batch_rgb: np.ndarray

    def _allocate_inputs(self, capacity: int) -> None:
        h, w = self.input_size
        self.batch_rgb = np.zeros((capacity, 3, h, w), np.float32)
        self.batch_sparse = np.zeros((capacity, 1, h, w), np.float32)
        self.rgb, self.sparse = self.batch_rgb[:1], self.batch_sparse[:1]

    def resize(self, input_size: tuple[int, int]) -> None:
        """Buffers for another input size (kept when it is the current one; the networks take any size)."""
        if tuple(input_size) != self.input_size:
            self.input_size = tuple(input_size)
            self._allocate(self.batch_rgb.shape[0])

    def reserve(self, n: int) -> None:
        """Buffers for at least ``n`` frames (kept when already deep enough)."""
        if n > self.batch_rgb.shape[0]:
            self._allocate(n)


class TorchBackend(_InputBuffers):
    """A completion (``model(rgb, sparse)``) or monocular (``model(rgb)``) PyTorch module."""

    name = "torch"
    any_size = True   # the networks pad any input to their stride

    def __init__(self, model: torch.nn.Module, input_size: tuple[int, int], monocular: bool,
                 device: str = "cpu") -> None:
        self.device = device
        self.model = model.to(device).eval()
        self.monocular = monocular
        self.input_size = input_size
        self._allocate(1)

    def _allocate(self, capacity: int) -> None:
        self._allocate_inputs(capacity)
        self._out = np.zeros((capacity, *self.input_size), np.float32)
        self._out_t = torch.from_numpy(self._out)
        if self.device == "cpu":
            self._rgb_t, self._sparse_t = torch.from_numpy(self.batch_rgb), torch.from_numpy(self.batch_sparse)
        else:
            self._rgb_t = torch.zeros(self.batch_rgb.shape, device=self.device)
            self._sparse_t = torch.zeros(self.batch_sparse.shape, device=self.device)

    def run(self) -> np.ndarray:
        return self.run_batch(1)[0]

    @torch.inference_mode()
    def run_batch(self, n: int) -> np.ndarray:
        rgb, sparse = self._rgb_t[:n], self._sparse_t[:n]
        if self.device != "cpu":
            rgb.copy_(torch.from_numpy(self.batch_rgb[:n]), non_blocking=True)
            sparse.copy_(torch.from_numpy(self.batch_sparse[:n]), non_blocking=True)
        out = self.model(rgb) if self.monocular else self.model(rgb, sparse)
        self._out_t[:n].copy_(out["depth"][:, 0])
        return self._out[:n]


class OnnxBackend(_InputBuffers):
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
        self._names = [i.name for i in inputs] + [self.session.get_outputs()[0].name]
        # an export with a fixed batch of 1 runs a batch frame by frame (dynamic batch: one run)
        self.batchable = not isinstance(inputs[0].shape[0], int)
        # likewise an export with a fixed height and width runs at that size only
        self.any_size = not all(isinstance(side, int) for side in inputs[0].shape[2:])
        self.input_size = (h, w)
        self._binding = self.session.io_binding()
        self._bound: tuple[int, int] | None = None   # (first item, items) the binding points at
        self._allocate(1)

    def _allocate(self, capacity: int) -> None:
        self._allocate_inputs(capacity)
        self._out = np.zeros((capacity, 1, *self.input_size), np.float32)
        self._bound = None

    def _bind_items(self, first: int, n: int) -> None:
        """Point the IO binding at items ``first .. first + n`` of the buffers (no copy)."""
        if self._bound == (first, n):
            return
        buffers = [self.batch_rgb] + ([] if self.monocular else [self.batch_sparse])
        for name, array in zip(self._names, buffers):
            self._bind(name, array[first:first + n], is_input=True)
        self._bind(self._names[-1], self._out[first:first + n], is_input=False)
        self._bound = (first, n)

    def _bind(self, name: str, array: np.ndarray, is_input: bool) -> None:
        bind = self._binding.bind_input if is_input else self._binding.bind_output
        bind(name, "cpu", 0, np.float32, list(array.shape), array.ctypes.data)

    def run(self) -> np.ndarray:
        return self.run_batch(1)[0]

    def run_batch(self, n: int) -> np.ndarray:
        for first, items in [(0, n)] if self.batchable else [(i, 1) for i in range(n)]:
            self._bind_items(first, items)
            self.session.run_with_iobinding(self._binding)
        return self._out[:n, 0]
