"""Synthetic KITTI-like driving data: procedural scenes, analytic ray casting, KITTI file layouts.

``generate(SynthConfig(...), out)`` (or ``lumde synth``) writes drives that the KITTI loaders read
unchanged; :class:`~lumde_depth.data.synth.generate.Generator` renders single frames in memory.
"""
from lumde_depth.data.synth.generate import Generator, SynthConfig, generate
from lumde_depth.data.synth.frame import Frame

__all__ = ["Frame", "Generator", "SynthConfig", "generate"]
