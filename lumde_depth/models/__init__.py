"""Depth networks by name: ``build(name, **kwargs)``, ``names()``.

Completion models: ``model(rgb, sparse)`` with rgb B x 3 x H x W in [0, 1] and sparse B x 1 x H x W
metres -> dict with ``depth`` (B x 1 x H x W metres) and named features. Monocular models:
``model(rgb)`` -> dict with ``depth``.

Importing this package imports the architecture modules, which register their builders.
"""
from lumde_depth.models.registry import build, names, register
from lumde_depth.models import cdspn, lspkd, mono  # noqa: F401  (they register their architectures)

__all__ = ["build", "names", "register"]
