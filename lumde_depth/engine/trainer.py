"""The training / distillation loop behind ``lumde train`` and ``lumde distill``.

One loop serves a single process and ``torchrun`` (DistributedDataParallel; ``data.batch_size`` is
per process, the global batch is world size x batch_size): Adam over the model
and the loss's own parameters, the configured stages (parameters frozen per stage, a supervised
output per stage), mixed precision (``precision``: fp16 with a GradScaler on CUDA, bf16 on CUDA or
CPU), a csv/jsonl log, atomic training-state checkpoints
every N steps, and an exact resume: the data order is a seeded per-epoch permutation whose already
done batches are skipped, per-sample augmentation is seeded by (seed, epoch, index), and every
random generator is restored, so on CPU in deterministic mode a run killed with SIGKILL and resumed
ends with the same weights, bit for bit, as one that was never interrupted.

What a person sees (:mod:`lumde_depth.engine.monitor`): a start-up summary, progress as a bar or
plain lines, validation metrics with units, TensorBoard event files, ``best.pt`` by
``eval.best_metric``; Ctrl-C saves a checkpoint and returns (the CLI prints the resume command).
"""
from __future__ import annotations

import contextlib
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from lumde_depth.config import ConfigError, to_dict
from lumde_depth.engine import checkpoint as ckpt
from lumde_depth.engine.datasets import EpochLoader, build_split, to_device
from lumde_depth.engine.distributed import (World, barrier, broadcast_buffers, check_same_weights, init_world,
                                            reduce_mean, shutdown)
from lumde_depth.engine.experiment import ExperimentConfig, StageConfig
from lumde_depth.engine.logs import MetricsLog
from lumde_depth.engine.monitor import Board, BestModel, Console, StopRequest, human, short_metric, validation_line
from lumde_depth.engine.objective import Objective, build_loss
from lumde_depth.engine.preflight import check_before_writing
from lumde_depth.engine.schedule import check_stage_prefixes, lr_at, stage_at, trainable
from lumde_depth.models import build
from lumde_depth.models.io import load_model, save_model


#: Settings that may change between an interrupted run and its resume (they do not change the result).
FREE_ON_RESUME = ("log.", "checkpoint.keep", "data.num_workers", "eval.model", "device")


@dataclass
class TrainResult:
    run_dir: Path
    model_path: Path | None
    step: int
    metrics: dict[str, float]
    checksums: list[float]
    model: torch.nn.Module
    interrupted: bool = False          # stopped by SIGINT / SIGTERM; ``checkpoint`` holds the state
    checkpoint: Path | None = None
    best_path: Path | None = None      # best.pt: the best validation by cfg.best_metric


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (None: plain fp32)."""
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"precision fp16 needs CUDA (the device is {device.type}); use bf16 or fp32 on the CPU")
    if precision == "auto":
        precision = "fp16" if device.type == "cuda" else "fp32"
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)


def mixed_precision(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device``, or nothing for fp32."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def set_deterministic(on: bool) -> None:
    """Bitwise-reproducible kernels (slower); CUDA also needs a fixed cuBLAS workspace."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.benchmark = not on


def build_model(cfg: ExperimentConfig) -> torch.nn.Module:
    """The configured architecture, with the weights of ``model.init`` when given."""
    model = build(cfg.model.name, **cfg.model.kwargs)
    if cfg.model.init:
        init, _meta = load_model(cfg.model.init)
        if init.arch_name != model.arch_name:
            raise ConfigError(f"model.init {cfg.model.init} holds a '{init.arch_name}', not a '{cfg.model.name}'")
        model.load_state_dict(init.state_dict())
    return model


def build_teacher(cfg: ExperimentConfig) -> Any:
    """The teacher source named by ``teacher.source`` (model file, exported file or prediction cache)."""
    if not cfg.teacher.source:
        raise ConfigError("distillation needs a teacher: set teacher.source to a model file, an exported "
                          "TorchScript/ONNX file or a folder of cached predictions")
    from lumde_depth.distill.teachers import TeacherError, load_teacher
    try:
        return load_teacher(cfg.teacher.source)
    except TeacherError as exc:
        raise ConfigError(f"teacher.source: {exc}") from None


def prepare_run_dir(run_dir: Path, cfg: Any, resume: bool, free: tuple[str, ...] = FREE_ON_RESUME, extend: int = 0,
                    say=print, is_main: bool = True) -> dict[str, Any] | None:
    """Check the run dir against ``--resume``; returns the checkpoint to resume from (or None).

    ``cfg``: the run's configuration (an :class:`ExperimentConfig`, or a plain dict for other loops);
    keys starting with one of ``free`` may differ between the interrupted run and its resume. The
    newest readable checkpoint is used: an unreadable newer one is renamed ``*.corrupt`` (by rank 0)
    and said so. An experiment's last stage may be longer than the run's (or ``extend`` steps are
    added to it): that continues a finished run; an earlier extension is kept.
    """
    found = ckpt.list_checkpoints(run_dir)
    if not found:
        if extend:
            raise ConfigError(f"--extend continues a run, but {run_dir} holds no checkpoint: give the run's folder "
                              "(--out RUN_DIR), or train a new run without --extend")
        return None
    if not resume:
        raise ConfigError(f"{run_dir} already holds checkpoints (newest {found[-1].name}); pass --resume to "
                          "continue that run (with --extend N to train a finished run N steps longer), or "
                          "--out NEW_DIR to start another")
    state = _newest_readable(found, say, is_main)
    staged = not isinstance(cfg, dict)
    saved, current = state["config"], (to_dict(cfg) if staged else cfg)
    if staged:
        saved_steps, wanted = saved["stages"][-1]["steps"], cfg.stages[-1].steps
        current["stages"][-1]["steps"] = saved_steps
    differ = [k for k in _differences(saved, current) if not k.startswith(free)]
    if differ:
        hint = (" (to train longer, change only the last stage's steps, or pass --extend N)"
                if staged and differ == ["stages"] and _same_but_steps(saved["stages"], current["stages"]) else "")
        raise ConfigError(f"--resume: the configuration differs from the one {run_dir} was started with at "
                          f"{', '.join(differ)}; resume with the same config and overrides{hint}")
    if not staged:
        return state
    planned = sum(s["steps"] for s in saved["stages"])
    cfg.stages[-1].steps = max(saved_steps, wanted) + extend
    if wanted < saved_steps:
        say(f"the run's last stage has {saved_steps} steps (extended earlier; the config says {wanted}): "
            f"it keeps {saved_steps}")
    if cfg.total_steps != planned:
        say(f"extending the run: {planned} -> {cfg.total_steps} steps (the last stage, "
            f"'{cfg.stages[-1].name}', now has {cfg.stages[-1].steps})")
    elif state["step"] >= planned:
        say(f"the run already finished its {planned} steps: it is validated and its model file written again "
            "(--extend N trains it N steps longer)")
    return state


def _newest_readable(found: list[Path], say, is_main: bool) -> dict[str, Any]:
    """The newest checkpoint that loads; unreadable newer ones are renamed ``*.corrupt``."""
    from lumde_depth.models.io import ModelFileError
    for path in reversed(found):
        try:
            state = ckpt.load_checkpoint(path)
        except ModelFileError as exc:
            bad = path.with_name(path.name + ".corrupt")
            if is_main:
                path.replace(bad)
            say(f"checkpoint {path} is unreadable ({str(exc).splitlines()[0][:200]}); kept as {bad.name}, "
                "falling back to the one before it")
            continue
        state["path"] = str(path)
        return state
    raise ConfigError(f"no readable checkpoint in {found[0].parent}: start a new run (--out NEW_DIR)")


def _same_but_steps(saved: list[dict], current: list[dict]) -> bool:
    strip = [[{k: v for k, v in s.items() if k != "steps"} for s in stages] for stages in (saved, current)]
    return len(saved) == len(current) and strip[0] == strip[1]


def run(cfg: ExperimentConfig, run_dir: str | Path, resume: bool = False, distill: bool = False,
        extend: int = 0) -> TrainResult:
    """Train (or distill) the experiment into ``run_dir``; rank 0 writes, every rank trains.

    SIGINT / SIGTERM stop the run after the current step with a checkpoint saved
    (``TrainResult.interrupted``); ``resume`` continues it, ``extend`` adds steps to its last stage.
    """
    run_dir = Path(run_dir)
    world = init_world(cfg.device)
    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    try:
        with StopRequest() as stop:
            return _run(cfg, run_dir, resume, distill, world, extend, stop)
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]
        shutdown(world)


def _run(cfg: ExperimentConfig, run_dir: Path, resume: bool, distill: bool, world: World, extend: int,
         stop: StopRequest) -> TrainResult:
    set_deterministic(cfg.deterministic)
    say = print if world.is_main else (lambda text: None)
    state = prepare_run_dir(run_dir, cfg, resume, extend=extend, say=say, is_main=world.is_main)
    seed_everything(cfg.seed)
    model = build_model(cfg)
    check_stage_prefixes(model, cfg.stages)
    teacher = build_teacher(cfg) if distill else None
    objective = Objective(model, build_loss(cfg.loss, student=model, teacher=teacher), cfg.model.kind).to(world.device)
    features = tuple(getattr(objective.loss, "required_features", ()))
    optimizer = build_optimizer(cfg, objective)
    critic_opt = objective.loss.critic_optimizer() if getattr(objective.loss, "critic", None) is not None else None
    amp_dtype = autocast_dtype(cfg.precision, world.device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype is torch.float16)  # bf16 has fp32's range
    train_set = build_split(cfg.data, cfg.data.train_split, train=True)
    loader = EpochLoader(train_set, cfg.data.batch_size, cfg.data.num_workers, world, cfg.seed)
    val_set = build_split(cfg.data, cfg.data.val_split, train=False) if cfg.data.val_split and world.is_main else None
    check_before_writing(cfg, objective, teacher, loader.samples.dataset, features, world.device)
    step, epoch, batch_pos, elapsed = 0, 0, 0, 0.0
    if state is not None:
        step, epoch, batch_pos, elapsed = _restore(state, objective, optimizer, scaler, critic_opt)
    total = cfg.total_steps
    best = BestModel(cfg.best_metric, cfg.data.protocol, state.get("best") if state else None)
    log = MetricsLog(run_dir, resume_step=step) if world.is_main else None
    board = Board(run_dir / "tensorboard", step) if world.is_main and cfg.log.tensorboard else None
    summary = _summary(cfg, run_dir, world, objective.model, train_set, val_set, loader, state, distill, amp_dtype)
    if world.is_main:
        (run_dir / "config.yaml").write_text(_yaml(to_dict(cfg)))
        log.event("start", {"step": step, **summary})
    console = Console(world, cfg.log.progress, cfg.log.print_every or cfg.log.every, total, step, cfg.name)
    console.say(_summary_text(cfg, run_dir, summary, state, board))
    stream = loader.iterate(epoch, batch_pos)
    wrapped, stage_index, t0, window = objective, -1, time.perf_counter() - elapsed, time.perf_counter()
    input_size, metrics, saved = None, {}, None
    stopped = False
    objective.train()
    while step < total:
        index, start = stage_at(cfg.stages, step)
        stage = cfg.stages[index]
        if index != stage_index:
            wrapped, stage_index = _enter_stage(objective, stage, world), index
        epoch, batch_pos, batch = next(stream)
        lr = lr_at(cfg.optim, stage, step - start)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = to_device(batch, world.device)
        input_size = list(batch["rgb"].shape[-2:])
        with mixed_precision(world.device, amp_dtype):
            with torch.no_grad():
                teacher_out = teacher(batch, features=features) if teacher is not None else None
            loss, parts = wrapped(batch, teacher_out, stage.target)
        _optimize(loss, parts, step, optimizer, scaler, cfg.optim.grad_clip)
        if critic_opt is not None:  # alternating adversarial step: teacher depth real, this step's student depth fake
            parts.update(objective.loss.critic_step(objective.loss.fake.float(), teacher_out["depth"].float(),
                                                    critic_opt, sync=_gradient_sync(world)))
        step += 1
        epoch, batch_pos = (epoch + 1, 0) if batch_pos + 1 == loader.batches_per_epoch else (epoch, batch_pos + 1)
        if step % cfg.log.every == 0 or step == total:
            values = reduce_mean({**parts, "total": float(loss.detach())}, world)
            now = time.perf_counter()
            rate = cfg.log.every * cfg.data.batch_size * world.size / max(now - window, 1e-9)
            window = now
            if log is not None:
                row = {"step": step, "epoch": epoch, "stage": stage.name, "lr": lr, **values,
                       "time_s": now - t0, "samples_per_s": rate}
                log.write("train", row)
            if board is not None:
                board.scalars("train", {**values, "lr": lr, "samples_per_s": rate}, step)
            console.logged(values["total"], lr, rate)
        console.step(step, epoch)
        if cfg.eval.every and step % cfg.eval.every == 0 and step < total:
            metrics = _validate(cfg, objective.model, val_set, world, log, step, console, board, best, run_dir,
                                _model_meta(cfg, distill, val_set, input_size, run_dir, step))
        stopped = stop.requested(world)
        if step % cfg.checkpoint.every == 0 or step == total or stopped:
            if world.is_main:
                saved = ckpt.save_checkpoint(run_dir, {
                    "step": step, "epoch": epoch, "batch": batch_pos, "elapsed": time.perf_counter() - t0,
                    "model": objective.model.state_dict(), "loss": objective.loss.state_dict(),
                    "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                    **({"critic_optimizer": critic_opt.state_dict()} if critic_opt is not None else {}),
                    "rng": ckpt.capture_rng(), "config": to_dict(cfg), "best": best.state(),
                    "meta": _model_meta(cfg, distill, val_set, input_size, run_dir, step)}, keep=cfg.checkpoint.keep)
            barrier(world)
        if stopped:
            break
    console.close()
    if stopped:
        console.say(f"{stop.name}: stopped at step {step} of {total}")
        if board is not None:
            board.close()
        return TrainResult(run_dir, None, step, {}, [], objective.model, interrupted=True, checkpoint=saved)
    broadcast_buffers(objective.model, world)
    checksums = check_same_weights(objective.model, world)
    meta = _model_meta(cfg, distill, val_set, input_size, run_dir, step)
    if cfg.data.val_split:
        metrics = _validate(cfg, objective.model, val_set, world, log, step, console, board, best, run_dir, meta)
    model_path = None
    if world.is_main:
        model_path = save_model(run_dir / "model.pt", objective.model, {**meta, "val_metrics": metrics})
    if board is not None:
        board.close()
    return TrainResult(run_dir, model_path, step, metrics, checksums, objective.model,
                       best_path=run_dir / "best.pt" if best.step is not None else None)


def _model_meta(cfg: ExperimentConfig, distill: bool, val_set, input_size: list[int] | None, run_dir: Path,
                step: int) -> dict[str, Any]:
    """What the run's model files (model.pt, best.pt, and each checkpoint as a model) record."""
    return {"input_size": _deployed_input_size(val_set) or input_size or _saved_input_size(run_dir),
            "depth_range": list(cfg.data.depth_range), "kind": cfg.model.kind,
            "trained_on": f"{cfg.data.kind}:{cfg.data.root}:{cfg.data.train_split}", "experiment": cfg.name,
            "steps": step, "seed": cfg.seed, "teacher": cfg.teacher.source if distill else None}


def _summary(cfg: ExperimentConfig, run_dir: Path, world: World, model: torch.nn.Module, train_set, val_set,
             loader: EpochLoader, state: dict[str, Any] | None, distill: bool,
             amp_dtype: torch.dtype | None) -> dict[str, Any]:
    """The facts of the start-up summary (also logged as the 'start' row of log.jsonl)."""
    from lumde_depth.engine.profile import count_params
    return {"run_dir": str(run_dir), "device": str(world.device), "world_size": world.size,
            "batch_per_process": cfg.data.batch_size, "global_batch": cfg.data.batch_size * world.size,
            "precision": str(amp_dtype).replace("torch.", "") if amp_dtype is not None else "fp32",
            "model": cfg.model.name, "parameters": count_params(model),
            "train_samples": len(train_set), "val_samples": len(val_set) if val_set is not None else 0,
            "steps_per_epoch": loader.batches_per_epoch, "total_steps": cfg.total_steps,
            "resumed_from": state["step"] if state is not None else None,
            "teacher": cfg.teacher.source if distill else None}


def _summary_text(cfg: ExperimentConfig, run_dir: Path, s: dict[str, Any], state: dict[str, Any] | None,
                  board: Board | None) -> str:
    start = (f"resumed from step {state['step']} ({state['path']})" if state is not None
             else "new run")
    stages = ", ".join(f"{st.name} {st.steps} steps lr {st.lr:g}" for st in cfg.stages)
    validation = (f"validation on {s['val_samples']} samples every {cfg.eval.every} steps and at the end"
                  if cfg.eval.every else f"validation on {s['val_samples']} samples at the end")
    lines = [f"{cfg.name}: {start}; run folder {run_dir}",
             f"  device {s['device']}, {s['precision']}; world size {s['world_size']} process(es), batch "
             f"{s['batch_per_process']} per process = global batch {s['global_batch']}",
             f"  model {cfg.model.name} {cfg.model.kwargs or ''}: {human(s['parameters'])} parameters"
             + (f"; teacher {s['teacher']}" if s["teacher"] else ""),
             f"  data {cfg.data.kind} {cfg.data.root}: {s['train_samples']} training samples "
             f"({s['steps_per_epoch']} steps per epoch), "
             + (validation if s["val_samples"] else "no validation split"),
             f"  {s['total_steps']} steps ({stages}); checkpoint every {cfg.checkpoint.every} steps; "
             f"best.pt by {cfg.best_metric}"]
    if board is not None:
        lines.append(f"  watch: tensorboard --logdir {board.folder}   (also train.csv, val.csv, log.jsonl)")
    return "\n".join(lines)


def build_optimizer(cfg: ExperimentConfig, objective: Objective) -> torch.optim.Optimizer:
    """Adam (or AdamW) over the model and the loss's own parameters (LSPKD's 1x1 adapters, LUMDE's pose
    net). A critic of the loss (LUMDE's discriminator) is left out: it has its own optimizer and steps."""
    critic = getattr(objective.loss, "critic", None)
    skip = {id(p) for p in critic.parameters()} if critic is not None else set()
    opt_cls = torch.optim.AdamW if cfg.optim.name == "adamw" else torch.optim.Adam
    return opt_cls([p for p in objective.parameters() if id(p) not in skip], lr=cfg.stages[0].lr,
                   betas=tuple(cfg.optim.betas), eps=cfg.optim.eps, weight_decay=cfg.optim.weight_decay)


def _gradient_sync(world: World):
    """Under torchrun: a function averaging a module's gradients over the processes (the critic is
    stepped outside DistributedDataParallel); None in a world of one."""
    if not world.distributed:
        return None

    def sync(module: torch.nn.Module) -> None:
        for param in module.parameters():
            if param.grad is not None:
                torch.distributed.all_reduce(param.grad)
                param.grad /= world.size
    return sync


def _restore(state: dict[str, Any], objective: Objective, optimizer: torch.optim.Optimizer,
             scaler: torch.amp.GradScaler,
             critic_opt: torch.optim.Optimizer | None = None) -> tuple[int, int, int, float]:
    """Load a checkpoint into the live objects; returns (step, epoch, batch in epoch, elapsed seconds)."""
    objective.model.load_state_dict(state["model"])
    objective.loss.load_state_dict(state["loss"])
    optimizer.load_state_dict(state["optimizer"])
    if critic_opt is not None:
        critic_opt.load_state_dict(state["critic_optimizer"])
    scaler.load_state_dict(state["scaler"])
    ckpt.restore_rng(state["rng"])
    return state["step"], state["epoch"], state["batch"], state["elapsed"]


def _optimize(loss: torch.Tensor, parts: dict[str, float], step: int, optimizer: torch.optim.Optimizer,
              scaler: torch.amp.GradScaler, grad_clip: float | None) -> None:
    """One (scaled) backward pass and optimizer step, refusing a non-finite loss."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss is {loss.item()} at step {step} (parts {parts}); lower the stage lr "
                                 "or check the data for NaN / inf")
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if grad_clip:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], grad_clip)
    scaler.step(optimizer)
    scaler.update()


def _enter_stage(objective: Objective, stage: StageConfig, world: World) -> torch.nn.Module:
    """Freeze what the stage does not train; (re)wrap in DDP, which must see the final requires_grad."""
    for name, param in objective.model.named_parameters():
        param.requires_grad_(trainable(name, stage))
    if not world.distributed:
        return objective
    ids = [world.device.index] if world.device.type == "cuda" else None
    return DistributedDataParallel(objective, device_ids=ids)


def _validate(cfg: ExperimentConfig, model: torch.nn.Module, dataset, world: World, log: MetricsLog | None,
              step: int, console: Console, board: Board | None, best: BestModel, run_dir: Path,
              meta: dict[str, Any]) -> dict[str, float]:
    """Metrics on the validation split (rank 0 evaluates, the others wait): logged, printed with units,
    drawn into TensorBoard; a new best by ``cfg.best_metric`` is written to RUN_DIR/best.pt."""
    from lumde_depth.engine.evaluate import evaluate
    metrics: dict[str, float] = {}
    if world.is_main:
        metrics = evaluate(model, dataset, cfg.data.protocol, kind=cfg.model.kind, batch_size=cfg.eval.batch_size,
                           depth_range=cfg.data.depth_range, device=world.device)
        model.train()
        log.write("val", {"step": step, **metrics})
        is_best = best.update(step, metrics)
        if is_best:
            save_model(run_dir / "best.pt", model, {**meta, "val_metrics": metrics, "best": best.state()})
        console.say(validation_line(step, metrics, cfg.data.protocol, best.metric if is_best else None))
        console.logged(console.last.get("loss", float("nan")), console.last.get("lr", 0.0),
                       console.last.get("rate", 0.0),
                       **{best.metric: short_metric(best.metric, metrics[best.metric], cfg.data.protocol)})
        if board is not None:
            board.scalars("val", metrics, step)
            board.pictures(model, dataset, cfg.model.kind, cfg.log.images, cfg.data.depth_range, world.device, step)
    barrier(world)
    return metrics


def _deployed_input_size(val_set) -> list[int] | None:
    """The size the model is meant to run at: a validation frame's (training batches may be random
    crops of it, and DepthCompleter resizes whole images to this size)."""
    return list(val_set[0]["rgb"].shape[-2:]) if val_set is not None and len(val_set) else None


def _saved_input_size(run_dir: Path) -> list[int] | None:
    """The input size of an earlier model file of the run (a resume that had no step left)."""
    path = run_dir / "model.pt"
    return load_model(path)[1].get("input_size") if path.exists() else None


def _differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(current, dict):
        keys = sorted(set(saved) | set(current))
        return [d for k in keys for d in _differences(saved.get(k), current.get(k), f"{prefix}{k}.")]
    if isinstance(saved, float) and isinstance(current, float) and math.isclose(saved, current):
        return []
    return [] if saved == current else [prefix.rstrip(".")]


def _yaml(data: dict[str, Any]) -> str:
    import yaml
    return yaml.safe_dump(data, sort_keys=False)
