"""Loss configuration and the ``build_loss`` factory for distillation.

Two method families, chosen by ``method``:

- ``lspkd`` (Jeong et al., Sensors 2022, eq. 11)::

      L = L1_masked(D_s, target) + w1 * L1(D_s, D_t) + sum_terms weight * term

  where each term is one of ``lspkd`` (eq. 8; ``weight`` is the paper's w2), ``prob``, ``att``,
  ``spkd`` over its ``layers``. Several terms combine, as the paper's "Ours + PROB + ATT" rows.
  Feature terms need a live teacher model (its named features).
- ``blackbox`` (CDSPN thesis, eq. 4.5): MSE on the target and on the teacher's depth and depth
  gradient; works with any teacher source, cached predictions included.
- ``lumde`` (LUMDE, monocular): self-supervised photometric loss with a pose net, plus, with a
  teacher, pixel-wise, pair-wise and adversarial distillation (``lumde:`` sub-section,
  :class:`~lumde_depth.distill.lumde.LumdeConfig`); needs frame triplets (``kitti_raw``).

``target`` is the batch key supervised with (``gt``; ``sparse`` for the paper's sparse-supervision
experiment), averaged over pixels where it is > 0.

Example (yaml)::

    method: lspkd
    w1: 1.0
    terms:
      - {kind: lspkd, weight: 1.0, alpha: 1.0, layers: [E1, E2, E3, D1, D2, D3]}
      - {kind: att, weight: 1000.0}
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from lumde_depth.config import ConfigError, field, from_dict
from lumde_depth.distill.baselines import ATTTerm, PROBTerm, SPKDTerm
from lumde_depth.distill.blackbox import BlackBoxLoss
from lumde_depth.distill.features import DEFAULT_LAYERS, SIZE_MISMATCH, feature
from lumde_depth.distill.lspkd import LSPKDTerm
from lumde_depth.distill.lumde import LumdeConfig, LumdeLoss
from lumde_depth.distill.similarity import PADDINGS
from lumde_depth.distill.supervision import (TARGETS, logged, masked_error, student_depth, target_depth,
                                             teacher_depth)
from lumde_depth.distill.teachers import (Teacher, check_teacher_kind, load_teacher, model_kind, probe_batch,
                                          run_model)
from lumde_depth.models.io import unwrap

METHODS = ("lspkd", "blackbox", "lumde")
TERM_KINDS = ("lspkd", "prob", "att", "spkd")

#: Per-kind options of a feature term and their defaults (the papers' values).
_TERM_OPTIONS: dict[str, dict[str, Any]] = {"lspkd": {"alpha": 1.0, "padding": "zero"}, "att": {"p": 2.0}}


@dataclass
class FeatureTermConfig:
    """One feature-distillation term of the ``lspkd`` method."""

    kind: str = field("lspkd", choices=TERM_KINDS, doc="lspkd (local similarity), prob, att or spkd (global)")
    weight: float = field(1.0, low=0.0, doc="weight of the term in the total (w2 for lspkd: KITTI 1, NYUv2 0.1)")
    layers: list[str] = field(default_factory=lambda: list(DEFAULT_LAYERS),
                              doc="named features distilled (both models must return them)")
    alpha: float | None = field(None, low=0.0, doc="lspkd only: weight of the similarity part (paper: 1)")
    padding: str | None = field(None, choices=PADDINGS, doc="lspkd only: neighbours outside the image")
    p: float | None = field(None, low=1.0, high=8.0, doc="att only: attention exponent (paper: 2)")
    size_mismatch: str = field("error", choices=SIZE_MISMATCH,
                               doc="student/teacher feature H x W differ: error, or interpolate the student's")

    def __post_init__(self) -> None:
        if not self.layers:
            raise ConfigError(f"term '{self.kind}': 'layers' is empty; list the features to distil, e.g. "
                              f"{list(DEFAULT_LAYERS)}")
        if len(set(self.layers)) != len(self.layers):
            raise ConfigError(f"term '{self.kind}': 'layers' lists a layer twice: {self.layers}")
        own = _TERM_OPTIONS.get(self.kind, {})
        for option in ("alpha", "padding", "p"):
            if option not in own and getattr(self, option) is not None:
                owner = [k for k, opts in _TERM_OPTIONS.items() if option in opts][0]
                raise ConfigError(f"term '{self.kind}': '{option}' applies to kind '{owner}' terms only; remove it")
        for option, default in own.items():
            if getattr(self, option) is None:
                setattr(self, option, default)


@dataclass
class LossConfig:
    """The distillation loss: method, target and the method's weights."""

    method: str = field("lspkd", choices=METHODS,
                        doc="lspkd (features + depth, Sensors 2022), blackbox (CDSPN) or lumde (monocular)")
    target: str = field("gt", choices=TARGETS, doc="batch key supervised with, over pixels > 0")
    w1: float | None = field(None, low=0.0, doc="lspkd only: weight of L1 to the teacher's depth (paper: 1)")
    terms: list[FeatureTermConfig] | None = field(None, doc="lspkd only: feature terms (default: one lspkd term)")
    lambda1: float | None = field(None, low=0.0, high=1.0, doc="blackbox only: teacher depth MSE weight (0.1)")
    lambda2: float | None = field(None, low=0.0, high=1.0, doc="blackbox only: teacher gradient MSE weight (0.1)")
    lumde: LumdeConfig | None = field(None, doc="lumde only: self-supervision, distillation and critic settings")

    def __post_init__(self) -> None:
        own = {"lspkd": ("w1", "terms"), "blackbox": ("lambda1", "lambda2"), "lumde": ("lumde",)}
        for method, options in own.items():
            for option in options:
                if method != self.method and getattr(self, option) is not None:
                    raise ConfigError(f"'{option}' applies to method '{method}' only (method is '{self.method}'); "
                                      "remove it")
        if self.method == "lspkd":
            self.w1 = 1.0 if self.w1 is None else self.w1
            self.terms = [FeatureTermConfig()] if self.terms is None else self.terms
            kinds = [t.kind for t in self.terms]
            if len(set(kinds)) != len(kinds):
                raise ConfigError(f"'terms' lists a kind twice ({kinds}); give each kind once with all its layers")
        elif self.method == "lumde":
            self.lumde = LumdeConfig() if self.lumde is None else self.lumde
        else:
            self.lambda1 = 0.1 if self.lambda1 is None else self.lambda1
            self.lambda2 = 0.1 if self.lambda2 is None else self.lambda2
            if self.lambda1 + self.lambda2 > 1.0:
                raise ConfigError(f"lambda1 + lambda2 = {self.lambda1 + self.lambda2} > 1: the ground-truth "
                                  "weight 1 - lambda1 - lambda2 would be negative")


class FeatureDistillLoss(nn.Module):
    """``L1_masked(target) + w1 * L1(teacher depth) + sum weight * term``; owns the terms' adapters."""

    def __init__(self, terms: Sequence[tuple[float, nn.Module]] = (), w1: float = 1.0, target: str = "gt") -> None:
        super().__init__()
        self.weights = [float(w) for w, _ in terms]
        self.terms = nn.ModuleList([t for _, t in terms])
        self.w1, self.target = float(w1), target

    @property
    def required_features(self) -> tuple[str, ...]:
        """The named features the student and teacher outputs must hold."""
        return tuple(dict.fromkeys(layer for term in self.terms for layer in term.layers))

    @property
    def needs_teacher(self) -> bool:
        return self.w1 > 0 or len(self.terms) > 0

    def forward(self, student_out: Mapping[str, torch.Tensor], teacher_out: Mapping[str, torch.Tensor] | None,
                batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """``(total loss, {"total", "gt", "teacher_depth", <term parts>: float})``."""
        if teacher_out is None and self.needs_teacher:
            raise ValueError("this loss distils from a teacher but got teacher_out=None")
        ds = student_depth(student_out)
        parts = {"gt": masked_error(ds, target_depth(batch, self.target, ds), squared=False)}
        total = parts["gt"]
        if self.w1 > 0:
            parts["teacher_depth"] = (ds - teacher_depth(teacher_out, ds)).abs().mean()
            total = total + self.w1 * parts["teacher_depth"]
        for weight, term in zip(self.weights, self.terms):
            term_parts = term(student_out, teacher_out)
            parts.update(term_parts)
            total = total + weight * sum(term_parts.values())
        return total, logged(total, parts)


def build_loss(cfg: LossConfig | Mapping[str, Any], student: nn.Module | None = None,
               teacher: Teacher | nn.Module | str | None = None,
               probe_size: tuple[int, int] = (64, 64)) -> nn.Module:
    """The loss module for ``cfg``: ``forward(student_out, teacher_out, batch) -> (total, parts)``.

    ``student`` and ``teacher`` are needed by ``lspkd`` terms, whose 1x1 adapters are sized by
    running both models once on a ``probe_size`` zero input. Give ``loss.parameters()`` to the
    optimizer (the adapters learn). The module's ``required_features`` names the features the
    teacher source must return. A teacher that gives depth only (exported file, cache) with feature
    terms is an error.
    """
    if not isinstance(cfg, LossConfig):
        cfg = from_dict(LossConfig, dict(cfg))
    if teacher is not None and student is not None and cfg.method != "lumde":
        teacher = load_teacher(teacher)
        check_teacher_kind(teacher, model_kind(unwrap(student)))
    if cfg.method == "blackbox":
        return BlackBoxLoss(cfg.lambda1, cfg.lambda2, cfg.target)
    if cfg.method == "lumde":
        return _lumde_loss(cfg.lumde, student, teacher)
    if cfg.terms and teacher is not None:
        teacher = load_teacher(teacher)
        teacher.check_features(sorted({layer for t in cfg.terms for layer in t.layers}))
    channels = _probe_channels(cfg.terms, student, teacher, probe_size)
    terms = []
    for t in cfg.terms:
        if t.kind == "lspkd":
            module = LSPKDTerm(channels["student"], channels["teacher"], t.layers, t.alpha, t.padding,
                               t.size_mismatch)
        elif t.kind == "att":
            module = ATTTerm(t.layers, t.p, t.size_mismatch)
        else:
            module = {"prob": PROBTerm, "spkd": SPKDTerm}[t.kind](t.layers, t.size_mismatch)
        terms.append((t.weight, module))
    return FeatureDistillLoss(terms, cfg.w1, cfg.target)


def _lumde_loss(cfg: LumdeConfig, student: nn.Module | None, teacher: Teacher | nn.Module | str | None) -> LumdeLoss:
    """The LUMDE loss, checked against the depth net's disparity range and the teacher source."""
    if student is not None:
        net = unwrap(student)
        for key in ("min_depth", "max_depth"):
            if hasattr(net, key) and float(getattr(net, key)) != float(getattr(cfg, key)):
                raise ConfigError(f"loss.lumde.{key} = {getattr(cfg, key)} but the model's {key} is "
                                  f"{getattr(net, key)}: the loss must turn disparity into depth as the model does; "
                                  f"set both to the same value")
    loss = LumdeLoss(cfg)
    if teacher is not None:
        teacher = load_teacher(teacher)
        if teacher.kind != "monocular":
            raise ConfigError(f"the LUMDE teacher must be a monocular depth net (model(rgb)); {teacher.identity} is a "
                              f"{teacher.kind} model")
        teacher.check_features(loss.required_features)
    return loss


def _probe_channels(terms: Sequence[FeatureTermConfig], student: nn.Module | None, teacher: Teacher | None,
                    size: tuple[int, int]) -> dict[str, dict[str, int]]:
    """Channel counts of the layers the ``lspkd`` terms adapt, from one forward of each model."""
    layers = sorted({layer for t in terms if t.kind == "lspkd" for layer in t.layers})
    if not layers:
        return {"student": {}, "teacher": {}}
    if student is None or teacher is None:
        raise ValueError("an lspkd term sizes its 1x1 adapters from the models: pass student= and teacher= "
                         "to build_loss")
    student = unwrap(student)
    batch = probe_batch(size, next(student.parameters()).device)
    was_training = student.training
    student.eval()
    try:
        with torch.no_grad():
            student_out = run_model(student, batch)
    finally:
        student.train(was_training)
    teacher_out = teacher(batch, features=layers)
    return {who: {layer: feature(out, layer, who).shape[1] for layer in layers}
            for who, out in (("student", student_out), ("teacher", teacher_out))}
