"""Inference: numpy in, numpy out depth completion (torch CUDA/CPU, onnxruntime, classical IP-Basic)."""
from lumde_depth.inference.completer import DEFAULT_MODEL, DEFAULT_MONO_MODEL, DepthCompleter

__all__ = ["DEFAULT_MODEL", "DEFAULT_MONO_MODEL", "DepthCompleter"]
