"""The typed experiment configuration behind ``lumde train|distill|eval|prune-test --config FILE``.

One yaml file describes one experiment of the papers: the model, the data, the loss, the teacher
(for distillation), Adam and its learning-rate policy, the training stages (CDSPN trains the
backbone, then the refinement with the backbone frozen, then everything), checkpointing, logging,
evaluation and the pruning stability test. Every key is validated by :mod:`lumde_depth.config`
before any work starts: a misspelled key is an error naming the closest valid one.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from lumde_depth.config import ConfigError, field, load, warn

#: Metric names of each evaluation protocol, in table order; True where lower is better.
PROTOCOL_METRICS: dict[str, dict[str, bool]] = {
    "kitti": {"rmse": True, "mae": True, "irmse": True, "imae": True},
    "nyu": {"rmse": True, "rel": True, "d1": False, "d2": False, "d3": False},
    "mono": {"abs_rel": True, "sq_rel": True, "rmse": True, "rmse_log": True, "d1": False, "d2": False, "d3": False},
}
PROTOCOL_METRICS["mono_lidar"] = PROTOCOL_METRICS["mono"]
PROTOCOLS = tuple(PROTOCOL_METRICS)
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DATA_CHECKS = ("quick", "full", "none")


@dataclass
class ModelConfig:
    name: str = field("lspkd_student", doc="registered architecture (lumde_depth.models.names())")
    kwargs: dict = field(default_factory=dict, doc="keyword arguments of the architecture, e.g. {width: 0.5}")
    kind: str = field("completion", choices=("completion", "monocular"), doc="model(rgb, sparse) or model(rgb)")
    init: Optional[str] = field(None, doc="model file (lumde_depth.models.io) whose weights start the run")


@dataclass
class DataConfig:
    kind: str = field("kitti_dc", doc="dataset kind of lumde_depth.data.build_dataset (kitti_dc, kitti_raw, nyuv2)")
    root: str = field("data/kitti_depth", doc="dataset root folder")
    train_split: str = field("train")
    val_split: str = field("val")
    val_kind: Optional[str] = field(None, doc="dataset kind of the validation split when it differs from 'kind' "
                                               "(monocular: train on kitti_raw triplets, evaluate on kitti_dc)")
    val_root: Optional[str] = field(None, doc="root of the validation split when it differs from 'root'")
    train_kwargs: dict = field(default_factory=dict, doc="extra build_dataset arguments for training (crops...)")
    val_kwargs: dict = field(default_factory=dict, doc="extra build_dataset arguments for validation")
    batch_size: int = field(8, low=1, high=4096, doc="per process: under torchrun each of the N processes takes "
                                                      "this many samples a step, a global batch of N x batch_size")
    num_workers: int = field(2, low=0, high=64)
    max_train_samples: Optional[int] = field(None, low=1, doc="use only the first N training samples")
    max_val_samples: Optional[int] = field(None, low=1, doc="evaluate on the first N validation samples")
    depth_range: list[float] = field(default_factory=lambda: [0.0, 80.0], low=0.0,
                                     doc="[min, max] metres; recorded in the model file, predictions clamped to it")
    protocol: str = field("kitti", choices=PROTOCOLS, doc="evaluation metrics (DESIGN.md section 8)")
    check: str = field("quick", choices=DATA_CHECKS,
                       doc="before training, the files of both splits: quick = every file exists and is complete "
                           "(a truncated PNG is found); full = every sample is read (slow); none")
    skip_corrupt: bool = field(False, doc="drop the frames the check finds damaged (named and counted) instead of "
                                          "stopping with an error")


@dataclass
class TeacherConfig:
    source: Optional[str] = field(None, doc="teacher: a model file (.pt lumde model, TorchScript, .onnx) or a folder "
                                             "of cached predictions; empty = no teacher")
    cache_dir: Optional[str] = field(None, doc="where `lumde distill --cache-teacher` writes predictions "
                                                "(default RUN_DIR/teacher_cache)")


@dataclass
class StageConfig:
    name: str = field("all", doc="shown in logs")
    steps: int = field(1000, low=1, doc="optimizer steps in this stage")
    lr: float = field(1e-3, low=0.0, high=1.0, doc="learning rate at the start of the stage")
    train: list[str] = field(default_factory=list, doc="parameter-name prefixes trained in this stage (empty = all)")
    freeze: list[str] = field(default_factory=list, doc="parameter-name prefixes frozen in this stage")
    target: str = field("depth", doc="model output supervised in this stage (e.g. coarse_depth for a backbone stage)")


@dataclass
class OptimConfig:
    name: str = field("adam", choices=("adam", "adamw"))
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999], low=0.0, high=1.0)
    eps: float = field(1e-8, low=0.0)
    weight_decay: float = field(0.0, low=0.0)
    policy: str = field("constant", choices=("constant", "step", "poly"), doc="learning-rate policy within a stage")
    step_size: int = field(1000, low=1, doc="'step': multiply the lr by gamma every step_size steps")
    gamma: float = field(0.5, low=0.0, high=1.0)
    power: float = field(0.9, low=0.0, doc="'poly': lr * (1 - t/T)^power")
    warmup_steps: int = field(0, low=0, doc="linear warm-up at the start of every stage")
    grad_clip: Optional[float] = field(None, low=0.0, doc="clip the global gradient norm")


@dataclass
class CheckpointConfig:
    every: int = field(500, low=1, doc="write a training-state checkpoint every N steps (and at the end)")
    keep: int = field(3, low=1, doc="keep the newest N checkpoints")


@dataclass
class LogConfig:
    every: int = field(10, low=1, doc="log a row (jsonl + csv + TensorBoard) every N steps")
    progress: bool = field(True, doc="tqdm progress bar (on a terminal; otherwise plain progress lines)")
    print_every: int = field(0, low=0, doc="without a progress bar (progress false, or stderr not a terminal, "
                                           "e.g. a cluster log): a plain progress line every N steps "
                                           "(0 = every log.every steps)")
    tensorboard: bool = field(True, doc="TensorBoard event files in RUN_DIR/tensorboard: losses, lr, validation "
                                        "metrics and depth pictures (tensorboard --logdir RUN_DIR)")
    images: int = field(2, low=0, high=16, doc="validation frames drawn into TensorBoard at each validation")


@dataclass
class EvalConfig:
    every: int = field(0, low=0, doc="evaluate on the validation set every N steps during training (0 = at the end)")
    model: Optional[str] = field(None, doc="model file for `lumde eval` / `lumde prune-test` "
                                           "(default RUN_DIR/model.pt)")
    batch_size: int = field(1, low=1)
    best_metric: Optional[str] = field(None, doc="validation metric that picks RUN_DIR/best.pt (default: the "
                                                  "protocol's first, rmse for kitti / nyu, abs_rel for mono)")


@dataclass
class PruneConfig:
    gamma: float = field(0.75, low=0.0, high=1.0, doc="fraction of a layer's filters disabled at random")
    repeats: int = field(1, low=1, doc="random draws per layer (metrics averaged)")
    metric: str = field("rmse", doc="metric compared before/after: one of the data.protocol's (PROTOCOL_METRICS)")
    layers: list[str] = field(default_factory=list, doc="module-name prefixes to test (empty = every layer: "
                                                                 "blocks as a whole, other conv layers alone)")
    eps: list[float] = field(default_factory=lambda: [0.01, 0.05, 0.25], low=0.0,
                             doc="relative metric change thresholds eps1 < eps2 < eps3 of thesis algorithm 1")


@dataclass
class ExperimentConfig:
    name: str = field("experiment", doc="run name (default run dir runs/<name>)")
    seed: int = field(0, low=0)
    deterministic: bool = field(False, doc="torch.use_deterministic_algorithms(True): bitwise-reproducible resumes")
    device: str = field("auto", choices=("auto", "cpu", "cuda"))
    precision: str = field("auto", choices=PRECISIONS,
                           doc="training arithmetic: fp32; fp16 = autocast + GradScaler (CUDA only); bf16 = autocast "
                               "to bfloat16 (CUDA or CPU, no scaler needed); auto = fp16 on CUDA, fp32 on CPU")
    imports: list[str] = field(default_factory=list, doc="python modules imported first (to register own models)")
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: dict = field(default_factory=dict, doc="loss terms, validated by lumde_depth.distill (see its docs)")
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    stages: list[StageConfig] = field(default_factory=lambda: [StageConfig()])
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)

    @property
    def total_steps(self) -> int:
        return sum(stage.steps for stage in self.stages)

    @property
    def best_metric(self) -> str:
        """The validation metric that picks best.pt."""
        return self.eval.best_metric or next(iter(PROTOCOL_METRICS[self.data.protocol]))


def load_experiment(path: str | Path | None, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """Load and fully validate an experiment (including the loss section, the imports, the model's
    arguments and options that would have no effect); errors name the file or the command line."""
    return load(ExperimentConfig, path, overrides, check=check_experiment)


def check_experiment(cfg: ExperimentConfig) -> None:
    """Everything about ``cfg`` that can be checked without data or models (ConfigError otherwise)."""
    if not cfg.stages:
        raise ConfigError("'stages' is empty: give at least one stage, e.g. stages: [{steps: 1000}]")
    if len(cfg.data.depth_range) != 2 or cfg.data.depth_range[0] >= cfg.data.depth_range[1]:
        raise ConfigError(f"'data.depth_range' must be [min, max] with min < max, got {cfg.data.depth_range}")
    if cfg.prune.metric not in PROTOCOL_METRICS[cfg.data.protocol]:
        raise ConfigError(f"'prune.metric' = {cfg.prune.metric!r} is not a {cfg.data.protocol} metric "
                          f"(choose one of {', '.join(PROTOCOL_METRICS[cfg.data.protocol])})")
    if cfg.eval.best_metric is not None and cfg.eval.best_metric not in PROTOCOL_METRICS[cfg.data.protocol]:
        raise ConfigError(f"'eval.best_metric' = {cfg.eval.best_metric!r} is not a {cfg.data.protocol} metric "
                          f"(choose one of {', '.join(PROTOCOL_METRICS[cfg.data.protocol])})")
    eps = cfg.prune.eps
    if len(eps) != 3 or not eps[0] <= eps[1] <= eps[2]:
        raise ConfigError(f"'prune.eps' must be three increasing thresholds [eps1, eps2, eps3], got {eps}")
    for module in cfg.imports:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"'imports': cannot import '{module}': {exc}") from None
    check_model_arguments(cfg.model)
    validate_loss(cfg.loss)
    check_effective(cfg)


def check_model_arguments(model: ModelConfig) -> None:
    """``model.name`` is registered and ``model.kwargs`` fit its signature (nothing is built)."""
    from lumde_depth.models.registry import check_arguments
    try:
        check_arguments(model.name, model.kwargs)
    except KeyError as exc:
        raise ConfigError(f"'model.name': {exc.args[0]}") from None
    except TypeError as exc:
        raise ConfigError(f"'model.kwargs': {exc}") from None


def check_effective(cfg: ExperimentConfig) -> None:
    """Options that would have no effect in this configuration: a :class:`ConfigWarning` naming each and
    why (they belong to a switch that is off, e.g. validation settings with ``data.val_split`` empty)."""
    optim, default = cfg.optim, OptimConfig()
    for key, policy in (("step_size", "step"), ("gamma", "step"), ("power", "poly")):
        if getattr(optim, key) != getattr(default, key) and optim.policy != policy:
            warn(f"'optim.{key}' has no effect: it applies to optim.policy '{policy}' only (the policy is "
                 f"'{optim.policy}')")
    if not cfg.data.val_split:
        unused = [key for key, value in (("data.val_kind", cfg.data.val_kind), ("data.val_root", cfg.data.val_root),
                                         ("data.max_val_samples", cfg.data.max_val_samples),
                                         ("data.val_kwargs", cfg.data.val_kwargs), ("eval.every", cfg.eval.every),
                                         ("eval.best_metric", cfg.eval.best_metric))
                  if value]
        if unused:
            warn(f"{', '.join(unused)} {'has' if len(unused) == 1 else 'have'} no effect: data.val_split is empty "
                 "(no validation)")
    if not cfg.log.tensorboard and cfg.log.images != LogConfig().images:
        warn("'log.images' has no effect with log.tensorboard: false (the pictures go into TensorBoard only)")
    if cfg.data.skip_corrupt and cfg.data.check == "none":
        warn("'data.skip_corrupt' has no effect with data.check: none (nothing is checked, so nothing is found to "
             "skip)")


def check_command(cfg: ExperimentConfig, distill: bool, cache_teacher: bool = False) -> None:
    """Teacher options the command (``lumde train`` / ``lumde distill``) would not use: a warning, or an
    error for a distillation whose loss reads nothing from its teacher."""
    if not distill and (cfg.teacher.source or cfg.teacher.cache_dir):
        key = "teacher.source" if cfg.teacher.source else "teacher.cache_dir"
        warn(f"'{key}' has no effect in `lumde train`, which trains without a teacher (distil with `lumde distill`)")
    if distill and cfg.teacher.source is not None:
        from lumde_depth.engine.objective import needs_teacher, parse_loss_config
        if not needs_teacher(parse_loss_config(cfg.loss)):
            raise ConfigError("'teacher.source' has no effect: the loss reads nothing from a teacher (w1 = 0 and no "
                              "feature terms, lambda1 = lambda2 = 0, or no lumde kd terms); give the loss teacher "
                              "terms, or train with `lumde train` and no teacher")
    if distill and cfg.teacher.cache_dir and not cache_teacher:
        warn("'teacher.cache_dir' has no effect without --cache-teacher (it is where that option writes the "
             "teacher's predictions; a cache to train from is given as teacher.source)")


def validate_loss(loss: dict[str, Any]) -> None:
    """Check the loss section with the distillation package's own strict config (before any work)."""
    from lumde_depth.engine.objective import parse_loss_config
    try:
        parse_loss_config(loss)
    except ConfigError as exc:
        raise ConfigError(f"loss: {exc}") from None
