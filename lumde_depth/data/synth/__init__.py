"""Synthetic KITTI-like driving data: procedural scenes, analytic ray casting, KITTI file layouts.

``generate(SynthConfig(...), out)`` (or ``lumde synth``) writes drives that the KITTI loaders read
unchanged; :class:`~lumde_depth.data.synth.generate.Generator` renders single frames in memory and
:func:`~lumde_depth.data.synth.generate.render_frames` a few frames of a seed.
"""
from lumde_depth.data.synth.generate import Generator, SynthConfig, generate, render_frames
from lumde_depth.data.synth.frame import Frame

__all__ = ["Frame", "Generator", "SynthConfig", "generate", "render_frames"]
