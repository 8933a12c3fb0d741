"""What a person sees of a training run while it runs.

- :class:`Console`: a progress bar on a terminal; where there is none (``log.progress: false``, or
  stderr is not a terminal, e.g. a cluster log) plain progress lines every ``log.print_every`` steps;
  the start-up summary and each validation's metrics with their units either way.
- :class:`Board`: TensorBoard event files (``torch.utils.tensorboard``; no server needed to write
  them): the logged losses and lr, validation metrics and a few validation frames as pictures
  (camera with the LiDAR points | prediction | ground truth, one colour scale).
- :class:`StopRequest`: Ctrl-C (SIGINT) or SIGTERM asks the loop to stop after the current step,
  so it can save a checkpoint; a second Ctrl-C aborts at once.
- :class:`BestModel`: which validation was the best so far by the chosen metric.
"""
from __future__ import annotations

import datetime
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from lumde_depth.config import ConfigError
from lumde_depth.engine.distributed import World
from lumde_depth.engine.evaluate import format_metrics, metric_unit
from lumde_depth.engine.experiment import PROTOCOL_METRICS


class Console:
    """Rank 0's console; every method is a no-op on the other ranks."""

    def __init__(self, world: World, progress: bool, every: int, total: int, initial: int, name: str) -> None:
        self.enabled = world.is_main
        self.use_bar = self.enabled and progress and sys.stderr.isatty()
        self.every, self.total, self.start = every, total, initial
        self.bar = tqdm(total=total, initial=initial, desc=name, disable=not self.use_bar, dynamic_ncols=True)
        self.last: dict[str, Any] = {}
        self.clock = datetime.datetime.now()

    def say(self, text: str) -> None:
        """A line for the person watching (above the bar when there is one)."""
        if not self.enabled:
            return
        if self.use_bar:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def logged(self, loss: float, lr: float, rate: float, **extra: str) -> None:
        """The newest logged training values (shown by the bar or the next plain line)."""
        self.last.update(loss=loss, lr=lr, rate=rate, **extra)
        if self.use_bar:
            self.bar.set_postfix(loss=f"{loss:.4g}", lr=f"{lr:.2g}", **extra)

    def step(self, step: int, epoch: int) -> None:
        """Called after every step: moves the bar, or prints a plain line every ``every`` steps."""
        if self.use_bar:
            self.bar.update(1)
        elif self.enabled and self.last and (step % self.every == 0 or step == self.total):
            elapsed = datetime.datetime.now() - self.clock
            left = elapsed * (self.total - step) / max(step - self.start, 1)
            extra = "".join(f" | {k} {v}" for k, v in self.last.items() if k not in ("loss", "lr", "rate"))
            self.say(f"step {step}/{self.total} ({100 * step / self.total:.0f}%) epoch {epoch} | "
                     f"loss {self.last['loss']:.4g} | lr {self.last['lr']:.2g} | "
                     f"{self.last['rate']:.1f} samples/s{extra} | elapsed {_clock(elapsed)}, left {_clock(left)}")

    def close(self) -> None:
        self.bar.close()


def _clock(delta: datetime.timedelta) -> str:
    return str(datetime.timedelta(seconds=round(delta.total_seconds())))


def validation_line(step: int, metrics: dict[str, float], protocol: str, best: str | None) -> str:
    """``step 20 validation (8 images): RMSE 812.3 mm, MAE ...`` plus a note when it is the best so far."""
    note = f" -- best {best} so far: saved best.pt" if best else ""
    images = int(metrics.get("samples", 0))
    return f"step {step} validation ({images} images): {format_metrics(metrics, protocol)}{note}"


def short_metric(name: str, value: float, protocol: str) -> str:
    """A progress-bar value with its unit, e.g. ``812mm``."""
    return f"{value:.4g}{metric_unit(name, protocol)}"


class BestModel:
    """The best validation so far by ``metric`` (lower or higher is better as the protocol says)."""

    def __init__(self, metric: str, protocol: str, state: dict[str, Any] | None = None) -> None:
        self.metric, self.lower = metric, PROTOCOL_METRICS[protocol][metric]
        self.value: float | None = (state or {}).get("value")
        self.step: int | None = (state or {}).get("step")

    def update(self, step: int, metrics: dict[str, float]) -> bool:
        """Record ``metrics``; True when they are the best so far."""
        value = metrics.get(self.metric)
        if value is None or value != value:
            return False
        if self.value is not None and (value >= self.value if self.lower else value <= self.value):
            return False
        self.value, self.step = float(value), step
        return True

    def state(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "step": self.step}


class Board:
    """TensorBoard event files of one run (rank 0 only); a resumed run drops the events logged after
    its checkpoint (``purge_step``), as the csv files do."""

    def __init__(self, folder: Path, resume_step: int | None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("log.tensorboard needs the tensorboard package: pip install 'tensorboard>=2.15,<3' "
                              "(requirements.txt), or set log.tensorboard=false") from None
        self.folder = folder
        self.writer = SummaryWriter(str(folder), purge_step=resume_step or None)

    def scalars(self, prefix: str, values: dict[str, Any], step: int) -> None:
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"{prefix}/{key}", value, step)

    @torch.no_grad()
    def pictures(self, model: torch.nn.Module, dataset, kind: str, count: int, depth_range, device: torch.device,
                 step: int) -> None:
        """The first ``count`` validation frames: camera + LiDAR | prediction | ground truth."""
        from lumde_depth.data.sample import rgb_array
        from lumde_depth.engine.objective import predict
        from lumde_depth.viz import colorize, overlay_points, stack
        far = float(depth_range[1])
        near = max(float(depth_range[0]), far / 80.0)
        was_training = model.training
        model.eval()
        for index in range(min(count, len(dataset))):
            sample = dataset[index]
            batch = {k: v[None].to(device) for k, v in sample.items() if torch.is_tensor(v)}
            depth = predict(model, batch, kind)["depth"][0, 0].float().clamp(*map(float, depth_range)).cpu().numpy()
            rgb = rgb_array(sample["rgb"])
            rows = [overlay_points(rgb, sample["sparse"][0].numpy(), near, far) if "sparse" in sample else rgb,
                    colorize(depth, near, far)]
            if "gt" in sample:
                rows.append(colorize(sample["gt"][0].numpy(), near, far))
            self.writer.add_image(f"val/frame_{index}", stack(rows), step, dataformats="HWC")
        model.train(was_training)

    def close(self) -> None:
        self.writer.close()


class StopRequest:
    """SIGINT / SIGTERM set a flag the loop reads between steps (in the main thread only; elsewhere
    signals keep their handlers). A second SIGINT raises KeyboardInterrupt at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.signal == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum

    def requested(self, world: World) -> bool:
        """Whether any process was asked to stop (all processes agree on the step they stop at)."""
        flag = self.signal is not None
        if not world.distributed:
            return flag
        tensor = torch.tensor([float(flag)], device=world.device)
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
        return bool(tensor.item())

    @property
    def name(self) -> str:
        return "Ctrl-C" if self.signal in (None, signal.SIGINT) else signal.Signals(self.signal).name


def human(count: float) -> str:
    """12345678 -> '12.3 M'."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{count:.0f}"
