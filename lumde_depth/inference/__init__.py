"""Inference: numpy in, numpy out depth completion (torch CUDA/CPU, onnxruntime, classical IP-Basic)."""
from lumde_depth.inference.completer import DEFAULT_MODEL, DEFAULT_MONO_MODEL, DepthCompleter
from lumde_depth.inference.frame_pool import FramePool, shared_torch_threads, usable_cores, use_torch_threads

__all__ = ["DEFAULT_MODEL", "DEFAULT_MONO_MODEL", "DepthCompleter", "FramePool", "shared_torch_threads", "usable_cores",
           "use_torch_threads"]
