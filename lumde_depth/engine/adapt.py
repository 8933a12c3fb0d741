"""``lumde adapt``: self-supervised fine-tuning of a completion model on a user's own unlabelled recording.

No ground truth is needed: the recording's own LiDAR is the target. Each training sample is a frame
of the recording at the network's input scale (resized exactly as :class:`DepthCompleter` resizes it
for the node: :meth:`DepthCompleter.network_inputs`), randomly cropped and flipped; part of its LiDAR
points are held out of the input (:func:`holdout_split`: random points, whole elevation bands =
LiDAR rings / rows, rectangular patches) and the loss is the error at the held-out points. A share
``synthetic_ratio`` of the samples are synthetic frames (:func:`lumde_depth.data.synth.render_frames`)
with their dense ground truth, so that what the model learned there is kept.

Optionally (``photometric`` > 0) a photometric term between consecutive frames whose camera poses are
known (``RigFrame.T_world_cam``: KITTI raw drives through their OXTS packets, DDAD scenes, bags with
``/tf``): each neighbour (the previous and the next frame of the same camera) is warped into the frame
through the predicted depth and the relative pose, and scored as Monodepth2 does
(:func:`photometric_loss`). It constrains the depth where the LiDAR has no points (above the top ring,
gaps, thin structures). A sample's neighbours are cut with the sample's own crop; a mirrored sample
mirrors its neighbours and their poses too (:class:`View`).

The recording's last frames (a contiguous block, ``holdout``), or a second recording, are never
trained on: the before / after report scores the models on them, as the node runs them (full
resolution, ``lidar_align`` on) and network only, against 20 % of their LiDAR points held out of the
input (the sparse-to-sparse protocol of ``bench/student_vs_classical.py``), with IP-Basic for reference.

Resumable: a training-state checkpoint every ``checkpoint_every`` steps
(:mod:`lumde_depth.engine.checkpoint`); the samples of step ``s`` depend only on ``(seed, s)``, so a
resumed run draws exactly the batches the interrupted one would have.

Python entry point: :func:`adapt` (``bench/real_accuracy.py`` calls it per held-out scene).
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field as dataclass_field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from tqdm import tqdm

from lumde_depth.config import ConfigError, field, from_dict, to_dict
from lumde_depth.data.real_sets import holdout
from lumde_depth.data.recording import Recording
from lumde_depth.data.rig_frame import RigFrame
from lumde_depth.distill.selfsup import min_reprojection, photometric_errors, warp_sources
from lumde_depth.engine import checkpoint as ckpt
from lumde_depth.engine.logs import MetricsLog
from lumde_depth.engine.metrics import MetricAccumulator, kitti_metrics
from lumde_depth.engine.trainer import prepare_run_dir
from lumde_depth.geometry import crop_intrinsics
from lumde_depth.inference import DepthCompleter
from lumde_depth.inference.backends import TorchBackend, resolve_device
from lumde_depth.inference.completer import DEFAULT_MODEL
from lumde_depth.models.io import load_model, save_model

LOSSES = ("l1", "berhu", "log_l1")
EVAL_HOLDOUT = 0.2   # share of a scored frame's LiDAR points held out as its ground truth
KITTI_WIDTH = 1242   # width of the synthetic generator's camera at camera_scale 1
FREE_ON_RESUME = ("progress", "threads", "log_every", "keep", "device")


@dataclass
class AdaptConfig:
    steps: int = field(600, low=1, high=10_000_000, doc="optimizer steps")
    batch_size: int = field(4, low=1, high=256)
    lr: float = field(1e-4, low=0.0, high=1.0, doc="Adam learning rate at the start (poly decay to 0)")
    crop: list[int] = field(default_factory=lambda: [160, 320], low=8,
                            doc="training crop (height, width) at the network's input scale")
    input_size: list[int] = field(default_factory=list, low=8,
                                  doc="network input (height, width) of the adapted model; empty = the source "
                                      "model's pixel count at the recording's aspect ratio (its own size when "
                                      "the aspect ratio is the same)")
    max_depth: float = field(0.0, low=0.0, high=1000.0,
                             doc="upper end of the adapted model's depth range (m); 0 = the larger of the source "
                                 "model's and the recording's 99.9th LiDAR depth percentile")
    synthetic_ratio: float = field(0.25, low=0.0, high=1.0, doc="share of the samples that are synthetic frames")
    synthetic_frames: int = field(24, low=1, high=10_000, doc="synthetic frames rendered for the mix")
    synthetic_seed: int = field(0, low=0)
    holdout: float = field(0.2, low=0.0, high=0.9,
                           doc="share of the recording's frames kept for the report (a contiguous block at the "
                               "end, never trained on); ignored when a separate evaluation recording is given")
    loss: str = field("l1", choices=LOSSES, doc="error at the held-out LiDAR points: l1 (m), berhu, log_l1")
    photometric: float = field(0.0, low=0.0, high=100.0,
                               doc="weight of the photometric term between consecutive frames with known camera "
                                   "poses (KITTI raw with oxts/, DDAD, bags with /tf); 0 = off")
    seed: int = field(0, low=0)
    eval_draws: int = field(1, low=1, high=20, doc="random 20 % hold-out draws per scored frame")
    score: bool = field(True, doc="score before and after on held-out frames; false: train on every frame of the "
                                  "recording and report no figures (e.g. a bench that scores the model itself)")
    checkpoint_every: int = field(100, low=1)
    keep: int = field(2, low=1, doc="training-state checkpoints kept")
    log_every: int = field(25, low=1, doc="a plain progress line (and a train.csv row) every N steps")
    device: str = field("auto", doc="auto | cpu | cuda | cuda:N")
    threads: int = field(0, low=0, high=256, doc="CPU threads of torch (0 = library default)")
    progress: bool = field(True, doc="tqdm progress bar")


@dataclass
class AdaptResult:
    run_dir: Path
    model_path: Path
    report: dict[str, Any]


# ---------------------------------------------------------------------- held-out LiDAR targets
def holdout_split(sparse: np.ndarray, K: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split a sparse depth map into ``(input, target)``: a random share of the points, plus with
    probability 1/2 each whole elevation bands (the LiDAR's rings, or rows of a non-scanning pattern,
    as seen from the camera) and rectangular patches, go to the target; the rest stay in the input."""
    height, width = sparse.shape
    valid = sparse > 0
    drop = rng.random(sparse.shape) < rng.uniform(0.1, 0.4)
    if rng.random() < 0.5:
        Kinv = np.linalg.inv(np.asarray(K, np.float64)[:3, :3])
        u, v = np.meshgrid(np.arange(width), np.arange(height))
        rays = np.einsum("ij,jhw->ihw", Kinv, np.stack([u, v, np.ones_like(u)]).astype(np.float64))
        elevation = np.degrees(np.arctan2(-rays[1], np.hypot(rays[0], rays[2])))
        band = rng.uniform(0.3, 2.0)
        index = np.floor((elevation - elevation.min()) / band + rng.random()).astype(np.int64)
        drop |= (rng.random(index.max() + 1) < rng.uniform(0.15, 0.4))[index]
    if rng.random() < 0.5:
        for _ in range(int(rng.integers(1, 4))):
            ph, pw = int(rng.integers(height // 8, height // 3 + 1)), int(rng.integers(width // 8, width // 3 + 1))
            top, left = int(rng.integers(0, height - ph + 1)), int(rng.integers(0, width - pw + 1))
            drop[top:top + ph, left:left + pw] = True
    zero = np.float32(0.0)
    return np.where(valid & ~drop, sparse, zero), np.where(valid & drop, sparse, zero)


def point_loss(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-sample mean error at the pixels where ``target > 0`` (B), 0 for a sample without targets."""
    mask = (target > 0).to(pred.dtype)
    if kind == "l1":
        err = (pred - target).abs()
    elif kind == "log_l1":
        err = (pred.clamp_min(1e-3).log() - target.clamp_min(1e-3).log()).abs()
    elif kind == "berhu":
        diff = (pred - target).abs() * mask
        c = (0.2 * diff.flatten(1).amax(1)).clamp_min(1e-6).view(-1, 1, 1, 1)
        err = torch.where(diff <= c, diff, (diff ** 2 + c ** 2) / (2 * c))
    else:
        raise ValueError(f"unknown loss {kind!r}; use one of {', '.join(LOSSES)}")
    return (err * mask).flatten(1).sum(1) / mask.flatten(1).sum(1).clamp_min(1.0)


# ---------------------------------------------------------------------- network-scale samples
@dataclass
class NetFrame:
    """A frame at the network's input scale: ``rgb`` 3xhxw (normalised as the model expects),
    ``sparse`` and ``gt`` (synthetic only) hxw metres, ``K`` 3x3; ``neighbours``: the frames next to it
    with a known relative pose, as ``(index among the real frames, 4x4 T_neighbour_frame)``."""

    rgb: np.ndarray
    sparse: np.ndarray
    K: np.ndarray
    gt: np.ndarray | None = None
    neighbours: list[tuple[int, np.ndarray]] = dataclass_field(default_factory=list)


def _check_depths(frame: RigFrame) -> None:
    if frame.depth.shape != frame.rgb.shape[:2]:
        raise ValueError(f"{frame.name}: sparse depth {frame.depth.shape} and image {frame.rgb.shape[:2]} differ")
    if not (frame.depth > 0).any():
        raise ValueError(f"{frame.name}: no LiDAR point projects into the image: check the LiDAR -> camera "
                         "transform (T_cam_lidar) and the calibration")


MIRROR = np.diag([-1.0, 1.0, 1.0, 1.0])   # x -> -x: a camera frame seen in a mirrored image


@dataclass(frozen=True)
class View:
    """A training sample's window of a network-scale frame (``top``, ``left``, ``height`` x ``width``),
    mirrored left-right when ``flip``: the same view applies to the frame's neighbours."""

    top: int
    left: int
    height: int
    width: int
    flip: bool

    @staticmethod
    def draw(shape: tuple[int, int], crop: tuple[int, int], rng: np.random.Generator) -> "View":
        h, w = shape
        ch, cw = min(crop[0], h), min(crop[1], w)
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        return View(top, left, ch, cw, bool(rng.random() < 0.5))

    def image(self, array: np.ndarray) -> np.ndarray:
        """The view of an ``(..., h, w)`` array."""
        out = array[..., self.top:self.top + self.height, self.left:self.left + self.width]
        return out[..., ::-1] if self.flip else out

    def K(self, K: np.ndarray) -> np.ndarray:
        """The intrinsics of the view of an image with ``K``."""
        out = crop_intrinsics(K, self.top, self.left)
        if self.flip:
            out[0, 2] = (self.width - 1) - out[0, 2]
        return out

    def pose(self, T: np.ndarray) -> np.ndarray:
        """A relative camera pose as the mirrored cameras see it: ``M T M`` with M = diag(-1, 1, 1, 1)
        (x translation and the rotations about y and z change sign)."""
        return MIRROR @ T @ MIRROR if self.flip else T


def make_batch(real: list[NetFrame], synthetic: list[NetFrame], cfg: AdaptConfig, step: int
               ) -> dict[str, torch.Tensor]:
    """The batch of ``step``: a function of ``(cfg.seed, step)`` only (exact resumes). With
    ``cfg.photometric`` also ``sources`` (B x 2 x 3 x h x w: the previous and next frame in the sample's
    view, zero where there is none), ``source_from_target`` (B x 2 x 4 x 4), ``has_source`` (B x 2) and ``K``."""
    rng = np.random.default_rng([cfg.seed, step])
    rgbs, inputs, targets, is_synth, Ks, sources, poses, has = [], [], [], [], [], [], [], []
    crop = (cfg.crop[0], cfg.crop[1])
    for _ in range(cfg.batch_size):
        synth = bool(synthetic) and rng.random() < cfg.synthetic_ratio
        pool = synthetic if synth else real
        frame = pool[int(rng.integers(len(pool)))]
        view = View.draw(frame.sparse.shape, crop, rng)
        rgb, sparse, K = view.image(frame.rgb), view.image(frame.sparse), view.K(frame.K)
        if synth:
            inp, target = sparse, view.image(frame.gt)
        else:
            inp, target = holdout_split(sparse, K, rng)
        if cfg.photometric > 0:
            pairs = [] if synth else frame.neighbours[:2]
            sources.append(np.stack([view.image(real[i].rgb) for i, _ in pairs]
                                    + [np.zeros_like(rgb)] * (2 - len(pairs))))
            poses.append(np.stack([view.pose(T) for _, T in pairs] + [np.eye(4)] * (2 - len(pairs))))
            has.append([True] * len(pairs) + [False] * (2 - len(pairs)))
        Ks.append(K)
        rgbs.append(np.ascontiguousarray(rgb))
        inputs.append(np.ascontiguousarray(inp))
        targets.append(np.ascontiguousarray(target))
        is_synth.append(synth)
    size = min(r.shape[1] for r in rgbs), min(r.shape[2] for r in rgbs)   # synthetic and real crops may differ
    cut = lambda a: np.ascontiguousarray(a[..., :size[0], :size[1]])  # noqa: E731  (K: the same top-left)
    batch = {"rgb": torch.from_numpy(np.stack([cut(r) for r in rgbs])),
             "sparse": torch.from_numpy(np.stack([cut(s) for s in inputs]))[:, None],
             "target": torch.from_numpy(np.stack([cut(t) for t in targets]))[:, None],
             "synthetic": torch.tensor(is_synth)}
    if cfg.photometric > 0:
        batch.update(sources=torch.from_numpy(np.stack([cut(s) for s in sources])),
                     source_from_target=torch.from_numpy(np.stack(poses)).float(),
                     has_source=torch.tensor(has), K=torch.from_numpy(np.stack(Ks)).float())
    return batch


def photometric_loss(depth: torch.Tensor, batch: dict[str, torch.Tensor], rgb_mean: torch.Tensor,
                     rgb_std: torch.Tensor, ssim_weight: float = 0.85) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample photometric loss of ``depth`` (B x 1 x h x w) through the known neighbour poses
    (:func:`make_batch`'s ``sources``...), 0 for a sample without neighbours; and the share of the
    counted pixels that auto-masking left out. Monodepth2's recipe (:mod:`lumde_depth.distill.selfsup`):
    ``0.85 (1 - SSIM) / 2 + 0.15 L1`` on the images in [0, 1] (un-normalised with the model's
    ``rgb_mean`` / ``rgb_std``), the per-pixel minimum over the neighbours, pixels a neighbour does not
    see left to the other one, and auto-masking of pixels the unwarped neighbour already matches."""
    target = batch["rgb"] * rgb_std + rgb_mean
    sources = batch["sources"] * rgb_std + rgb_mean
    present = batch["has_source"][:, :, None, None]
    warped, inside = warp_sources(sources, depth.clamp_min(0.1), batch["source_from_target"], batch["K"])
    inf = torch.tensor(float("inf"), device=depth.device)
    reprojection = torch.where(inside & present, photometric_errors(target, warped, ssim_weight), inf)
    identity = torch.where(present, photometric_errors(target, sources, ssim_weight), inf)
    best, automasked = min_reprojection(reprojection, identity)
    counted = torch.isfinite(best)
    per_sample = torch.where(counted, best, 0.0).flatten(1).sum(1) / counted.flatten(1).sum(1).clamp_min(1)
    share = (automasked & counted).sum() / counted.sum().clamp_min(1)
    return per_sample, share.detach()


# ---------------------------------------------------------------------- scoring
def completer_for(model: torch.nn.Module, meta: dict[str, Any], device: str = "cpu") -> DepthCompleter:
    """A :class:`DepthCompleter` running ``model`` in memory at ``meta['input_size']`` (what the node runs
    once the model is saved with ``meta``)."""
    return DepthCompleter(TorchBackend(model, tuple(meta["input_size"]), False, device), meta)


def score(completers: dict[str, DepthCompleter], frames: Iterable[RigFrame], seed: int, draws: int = 1,
          progress: bool = False) -> dict[str, dict[str, float]]:
    """KITTI metrics of each completer on ``frames`` against 20 % of each frame's LiDAR points held out
    of its input (``draws`` seeded draws per frame). Completers run as the node runs them (``name``) and,
    for network models, network only (``name, network only``: ``lidar_align`` off)."""
    accumulators: dict[str, MetricAccumulator] = {}
    for index, frame in enumerate(tqdm(frames, desc="scoring", unit="frame", disable=not progress)):
        _check_depths(frame)
        rng = np.random.default_rng([seed, index])
        for _ in range(draws):
            inp, gt = holdout(frame.depth, rng, EVAL_HOLDOUT)
            for name, completer in completers.items():
                modes = [(name, True)] + ([(f"{name}, network only", False)] if completer.backend is not None else [])
                for label, align in modes:
                    completer.lidar_align = align
                    pred = completer.complete(frame.rgb, inp, frame.K)
                    accumulators.setdefault(label, MetricAccumulator(kitti_metrics)).update(pred, gt)
                completer.lidar_align = completer.backend is not None
    return {name: acc.result() for name, acc in accumulators.items()}


# ---------------------------------------------------------------------- the run
def _log_line(text: str) -> None:
    tqdm.write(text, file=sys.stderr)


def adapt(recording: Recording, out: str | Path, *, model: str | Path | None = None,
          eval_recording: Recording | None = None, config: AdaptConfig | dict[str, Any] | None = None,
          resume: bool = False, log: Callable[[str], None] = _log_line) -> AdaptResult:
    """Adapt ``model`` (default: the shipped student) to ``recording``; returns the run folder, the
    adapted model file (``out/model.pt``, loadable by the node with ``model:=``) and the report.

    Scored on ``eval_recording`` when given (e.g. another scene of the same rig), else on the last
    ``config.holdout`` share of ``recording``'s frames, which are then not trained on.
    """
    cfg = config if isinstance(config, AdaptConfig) else from_dict(AdaptConfig, config or {})
    if len(cfg.crop) != 2 or (cfg.input_size and len(cfg.input_size) != 2):
        raise ConfigError("crop and input_size are (height, width) pairs")
    out = Path(out)
    source = Path(model) if model else DEFAULT_MODEL
    train_set, eval_set = _split(recording, eval_recording, cfg.holdout) if cfg.score else (recording, None)
    identity = {**to_dict(cfg), "model": str(source), "recording": recording.name,
                "eval_recording": eval_recording.name if eval_recording is not None else None}
    state = prepare_run_dir(out, identity, resume, free=FREE_ON_RESUME)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    net, source_meta = load_model(source)
    _check_completion(net, source)
    out.mkdir(parents=True, exist_ok=True)

    first = train_set.load(0)
    # by default the size the node runs the source model at for this camera (fit="aspect")
    size = tuple(cfg.input_size) if cfg.input_size else completer_for(net, source_meta).network_size(
        *first.rgb.shape[:2])
    real, depths = _network_frames(net, source_meta, size, train_set, cfg.progress)
    lo, source_hi = (float(v) for v in source_meta.get("depth_range", (0.0, 100.0)))
    hi = cfg.max_depth or max(source_hi, float(np.ceil(np.percentile(depths, 99.9) / 10.0) * 10.0))
    meta = {**source_meta, "input_size": list(size), "depth_range": [lo, hi]}
    log(f"lumde adapt: {len(train_set)} frames of {recording.name} to adapt on, "
        + (f"{len(eval_set)} held-out frames ({eval_set.name}) to score on" if eval_set else "not scored")
        + f"; network input {size[1]}x{size[0]}, depth range {lo:g}-{hi:g} m")
    posed = sum(bool(f.neighbours) for f in real)
    if cfg.photometric > 0:
        if not posed:
            raise ValueError(
                f"photometric={cfg.photometric:g} needs camera poses, but no frame of {train_set.name} has a "
                "neighbouring frame of the same camera with a known pose (KITTI raw drives give poses through "
                "oxts/ and calib_imu_to_velo.txt, DDAD scenes through their scene json, bags through /tf from "
                "the camera's frame to a fixed one; image folders carry none): adapt with photometric=0 "
                "(--set photometric=0), or on a recording with poses")
        log(f"lumde adapt: photometric term (weight {cfg.photometric:g}) on {posed} of {len(real)} frames"
            + (f"; {len(real) - posed} frame(s) have no neighbour with a known camera pose and get none"
               if posed < len(real) else ""))
    synthetic = _synthetic_frames(cfg, source_meta) if cfg.synthetic_ratio > 0 else []

    before = _score_before(source, net, meta, eval_set, cfg, device) if eval_set else {}
    _print_scores("before", before, log)

    net = net.to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    step, elapsed = 0, 0.0
    if state is not None:
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed = int(state["step"]), float(state["elapsed"])
        log(f"lumde adapt: resumed from step {step} ({ckpt.latest_checkpoint(out)})")
    metrics_log = MetricsLog(out, resume_step=step)
    t0 = time.perf_counter() - elapsed
    bar = tqdm(total=cfg.steps, initial=step, desc="lumde adapt", disable=not cfg.progress, dynamic_ncols=True)
    rgb_mean, rgb_std = (torch.tensor(meta.get(key, default), dtype=torch.float32, device=device).view(1, 3, 1, 1)
                         for key, default in (("rgb_mean", (0.0, 0.0, 0.0)), ("rgb_std", (1.0, 1.0, 1.0))))
    while step < cfg.steps:
        lr = cfg.lr * (1.0 - step / cfg.steps) ** 0.9
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = {k: v.to(device) for k, v in make_batch(real, synthetic, cfg, step).items()}
        pred = net(batch["rgb"], batch["sparse"])["depth"].clamp(lo, hi)
        per_sample = point_loss(pred, batch["target"].clamp(max=hi), cfg.loss)
        loss = per_sample.mean()
        if cfg.photometric > 0:
            photo, automasked = photometric_loss(pred, batch, rgb_mean, rgb_std)
            with_sources = batch["has_source"].any(1)
            photo = photo.sum() / with_sources.sum().clamp_min(1)
            loss = loss + cfg.photometric * photo
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {step}: lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps:
            synth = batch["synthetic"]
            per_sample = per_sample.detach()
            row = {"step": step, "lr": lr, "loss": float(loss.detach()), "time_s": time.perf_counter() - t0,
                   "loss_real": float(per_sample[~synth].mean()) if (~synth).any() else float("nan"),
                   "loss_synthetic": float(per_sample[synth].mean()) if synth.any() else float("nan")}
            photometric = ""
            if cfg.photometric > 0:
                row.update(photometric=float(photo.detach()) if with_sources.any() else float("nan"),
                           automasked=float(automasked) if with_sources.any() else float("nan"))
                photometric = f", photometric {row['photometric']:.4g} ({row['automasked']:.0%} auto-masked)"
            metrics_log.write("train", row)
            bar.set_postfix(loss=f"{row['loss']:.3g}")
            log(f"lumde adapt: step {step}/{cfg.steps} loss {row['loss']:.4g} (real {row['loss_real']:.4g}, "
                f"synthetic {row['loss_synthetic']:.4g}{photometric}) lr {lr:.3g}, {row['time_s']:.0f} s")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            ckpt.save_checkpoint(out, {"step": step, "elapsed": time.perf_counter() - t0,
                                       "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                                       "config": identity}, keep=cfg.keep)
    bar.close()

    net.eval()
    after = score({"after": completer_for(net, meta, device)}, eval_set.frames(), cfg.seed, cfg.eval_draws,
                  cfg.progress) if eval_set else {}
    _print_scores("after", after, log)
    report = _report(cfg, source, recording, train_set, eval_set, meta, before, after, step, posed)
    meta["adapted"] = {k: report[k] for k in ("source_model", "recording", "train_frames", "eval_frames", "steps",
                                              "synthetic_ratio", "photometric", "before", "after", "rmse_reduction")}
    meta["trained_on"] = f"lumde adapt:{recording.name}"
    model_path = save_model(out / "model.pt", net, meta)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(_report_md(report))
    log(f"lumde adapt: model file {model_path} (node: model:={model_path}); report {out / 'report.md'}")
    return AdaptResult(out, model_path, report)


def _split(recording: Recording, eval_recording: Recording | None, holdout: float) -> tuple[Recording, Recording]:
    if eval_recording is not None:
        return recording, eval_recording
    n = len(recording)
    k = max(1, round(holdout * n))
    if n - k < 1 or holdout == 0:
        raise ValueError(f"{recording.name}: {n} frame(s) cannot be split into frames to adapt on and held-out "
                         f"frames to score on (holdout {holdout}): record more frames, raise holdout above 0, or "
                         "give a separate recording to score on")
    return (recording.subset(range(n - k), f"{recording.name} (first {n - k} frames)"),
            recording.subset(range(n - k, n), f"{recording.name} (last {k} frames)"))


def _check_completion(net: torch.nn.Module, path: Path) -> None:
    from lumde_depth.engine.profile import takes_sparse
    if not takes_sparse(net):
        raise ValueError(f"{path} is a monocular model: lumde adapt fine-tunes completion models "
                         "(model(rgb, sparse)); give a completion model file, or none for the shipped student")


def _network_frames(net: torch.nn.Module, meta: dict[str, Any], size: tuple[int, int], recording: Recording,
                    progress: bool) -> tuple[list[NetFrame], np.ndarray]:
    """Every frame at the network's input scale (as the node prepares it), with its posed neighbours
    (:func:`pose_neighbours`), and a sample of LiDAR depths."""
    completer = completer_for(net, {**meta, "input_size": list(size)})
    frames, depths, cameras, poses = [], [], [], []
    for frame in tqdm(recording.frames(), total=len(recording), desc="reading frames", unit="frame",
                      disable=not progress):
        _check_depths(frame)
        inputs = completer.network_inputs(frame.rgb, frame.depth, frame.K)
        K = completer.network_K(frame.K, *frame.rgb.shape[:2])
        frames.append(NetFrame(inputs["rgb"][0], inputs["sparse"][0, 0], K))
        depths.append(frame.depth[frame.depth > 0])
        cameras.append((frame.scene, frame.camera, frame.rgb.shape))
        poses.append(frame.T_world_cam)
    for frame, neighbours in zip(frames, pose_neighbours(cameras, poses)):
        frame.neighbours = neighbours
    return frames, np.concatenate(depths)


def pose_neighbours(cameras: list[tuple[Any, ...]], poses: list[np.ndarray | None]
                    ) -> list[list[tuple[int, np.ndarray]]]:
    """For each frame of a recording (in time order), the previous and the next frame of the same camera
    (equal ``cameras`` keys: scene, camera, image size) when both frames have a pose ``T_world_cam``:
    ``(index, T_neighbour_frame)``, the relative pose taking the frame's points into the neighbour's."""
    out: list[list[tuple[int, np.ndarray]]] = [[] for _ in cameras]
    last: dict[tuple[Any, ...], int] = {}
    for index, key in enumerate(cameras):
        previous = last.get(key)
        last[key] = index
        if previous is None or poses[index] is None or poses[previous] is None:
            continue
        T_prev_this = np.linalg.inv(poses[previous]) @ poses[index]
        out[index].append((previous, T_prev_this))
        out[previous].append((index, np.linalg.inv(T_prev_this)))
    return out


def _synthetic_frames(cfg: AdaptConfig, meta: dict[str, Any]) -> list[NetFrame]:
    """Synthetic frames with dense ground truth, rendered at the source model's own input scale."""
    from lumde_depth.data.synth import render_frames

    scale = min(1.0, meta["input_size"][1] / KITTI_WIDTH)
    mean = np.asarray(meta.get("rgb_mean", (0.0, 0.0, 0.0)), np.float32).reshape(3, 1, 1)
    std = np.asarray(meta.get("rgb_std", (1.0, 1.0, 1.0)), np.float32).reshape(3, 1, 1)
    frames = []
    for f, K in tqdm(render_frames(cfg.synthetic_frames, cfg.synthetic_seed, camera_scale=scale),
                     total=cfg.synthetic_frames, desc="synthetic frames", unit="frame", disable=not cfg.progress):
        rgb = (f.rgb.transpose(2, 0, 1).astype(np.float32) / 255.0 - mean) / std
        frames.append(NetFrame(rgb, f.sparse, np.asarray(K, np.float64), f.groundtruth))
    return frames


def _score_before(source: Path, net: torch.nn.Module, meta: dict[str, Any], eval_set: Recording,
                  cfg: AdaptConfig, device: str) -> dict[str, dict[str, float]]:
    """IP-Basic, the source model as the node runs it, and (when they differ) the source weights at the
    adapted model's input size and depth range: what training alone changes."""
    completers: dict[str, DepthCompleter] = {
        "IP-Basic": DepthCompleter.load(backend="classical"),
        "before": DepthCompleter.load(source, backend="torch", device=device, warmup=0)}
    original = completers["before"].meta
    if list(original["input_size"]) != meta["input_size"] or list(original["depth_range"]) != meta["depth_range"]:
        completers["before, adapted input size and range"] = completer_for(net, meta, device)
    return score(completers, eval_set.frames(), cfg.seed, cfg.eval_draws, cfg.progress)


def _print_scores(title: str, scores: dict[str, dict[str, float]], log: Callable[[str], None]) -> None:
    for name, m in scores.items():
        log(f"lumde adapt [{title}] {name}: RMSE {m['rmse']:.1f} mm, MAE {m['mae']:.1f} mm, iRMSE {m['irmse']:.2f} 1/km")


def _report(cfg: AdaptConfig, source: Path, recording: Recording, train_set: Recording, eval_set: Recording | None,
            meta: dict[str, Any], before: dict[str, dict[str, float]], after: dict[str, dict[str, float]],
            step: int, posed: int) -> dict[str, Any]:
    reduction = 1.0 - after["after"]["rmse"] / before["before"]["rmse"] if eval_set else None
    return {"source_model": str(source), "recording": recording.name, "train_frames": len(train_set),
            "eval_frames": len(eval_set) if eval_set else 0, "eval_set": eval_set.name if eval_set else None,
            "steps": step,
            "input_size": meta["input_size"], "depth_range": meta["depth_range"],
            "synthetic_ratio": cfg.synthetic_ratio, "photometric": cfg.photometric,
            "photometric_frames": posed if cfg.photometric > 0 else 0, "protocol": f"{int(EVAL_HOLDOUT * 100)} % of each held-out frame's "
            f"LiDAR points held out of the input as ground truth, {cfg.eval_draws} draw(s) per frame; KITTI metrics",
            "before": before, "after": after, "rmse_reduction": reduction,
            "config": to_dict(cfg)}


def _report_md(report: dict[str, Any]) -> str:
    rows = [f"| {name} | {m['rmse']:.1f} | {m['mae']:.1f} | {m['irmse']:.2f} | {m['imae']:.2f} |"
            for scores in (report["before"], report["after"]) for name, m in scores.items()]
    h, w = report["input_size"]
    reduction = report["rmse_reduction"]
    if reduction is None:
        verdict = "- not scored (`score: false`): every frame was trained on"
    elif reduction >= 0:
        verdict = f"- RMSE as the node runs it: {reduction * 100:.1f} % lower after adaptation"
    else:
        verdict = f"- RMSE as the node runs it: {-reduction * 100:.1f} % HIGHER after adaptation"
    return "\n".join([
        "# lumde adapt: before / after",
        "",
        f"- source model: `{report['source_model']}`",
        f"- recording: `{report['recording']}`: adapted on {report['train_frames']} frames, scored on "
        f"{report['eval_frames']} other frames ({report['eval_set']})",
        f"- {report['steps']} steps, synthetic ratio {report['synthetic_ratio']}, "
        + (f"photometric weight {report['photometric']:g} on {report['photometric_frames']} frames with posed "
           "neighbours, " if report["photometric"] else "")
        + f"network input {w}x{h}, "
        f"depth range {report['depth_range'][0]:g}-{report['depth_range'][1]:g} m",
        f"- protocol: {report['protocol']}",
        verdict,
        "",
        "| model | RMSE (mm) | MAE (mm) | iRMSE (1/km) | iMAE (1/km) |",
        "|---|---:|---:|---:|---:|",
        *rows, ""])
