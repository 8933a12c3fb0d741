"""Distillation losses and teacher sources.

- Losses: :func:`build_loss` from a :class:`LossConfig` (``method: lspkd`` with feature terms
  lspkd / prob / att / spkd, or ``method: blackbox``); ``forward(student_out, teacher_out, batch)``
  returns ``(total, parts)``.
- Teachers: :func:`load_teacher` (live module, lumde / TorchScript / ONNX file, prediction cache),
  :func:`cache_teacher_predictions`.
"""
from lumde_depth.distill.losses import FeatureTermConfig, LossConfig, build_loss
from lumde_depth.distill.similarity import global_similarity, local_similarity
from lumde_depth.distill.teachers import (CachedTeacher, ModuleTeacher, OnnxTeacher, Teacher, TeacherError,
                                          TorchScriptTeacher, cache_teacher_predictions, load_teacher)

__all__ = ["build_loss", "LossConfig", "FeatureTermConfig", "local_similarity", "global_similarity",
           "Teacher", "TeacherError", "ModuleTeacher", "TorchScriptTeacher", "OnnxTeacher", "CachedTeacher",
           "load_teacher", "cache_teacher_predictions"]
