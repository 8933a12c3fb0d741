"""Model cost: parameters, FLOPs at a stated resolution, latency.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode``, which counts a multiply-add as
2 FLOPs for convolutions, transposed convolutions and matrix products (and nothing for
element-wise ops, normalisation or interpolation). Papers usually report multiply-accumulates
under the name "FLOPs"; compare them with ``macs = flops / 2``.
"""
from __future__ import annotations

import copy
import inspect
import statistics
import time
from pathlib import Path
from typing import Any, Sequence

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (buffers such as BatchNorm running statistics are not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def input_names(model: torch.nn.Module) -> list[str]:
    """The names of the required positional arguments of ``model.forward``."""
    return [p.name for p in inspect.signature(model.forward).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]


def takes_sparse(model: torch.nn.Module) -> bool:
    """True for completion models (``forward(rgb, sparse)``), False for monocular (``forward(rgb)``)."""
    return "sparse" in input_names(model)


def example_inputs(model: torch.nn.Module, input_size: Sequence[int], batch: int = 1,
                   device: str | torch.device = "cpu", density: float = 0.05,
                   seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs of ``input_size`` (H, W), one per required argument of ``model.forward``.

    By argument name: ``sparse`` gets a sparse depth map (``density`` of its pixels at 1-80 m, like
    a projected LiDAR scan), ``depth*`` a dense depth map (1-80 m), anything else (``rgb``,
    ``rgb_a``, ...) an image in [0, 1]. So completion (rgb, sparse), monocular (rgb), pose
    (rgb_a, rgb_b) and critic (depth) networks can all be profiled.
    """
    h, w = _size(input_size)
    gen = torch.Generator().manual_seed(seed)
    inputs = []
    for name in input_names(model):
        if name == "sparse":
            keep = torch.rand(batch, 1, h, w, generator=gen) < density
            x = torch.where(keep, 1.0 + 79.0 * torch.rand(batch, 1, h, w, generator=gen), torch.zeros(()))
        elif name.startswith("depth"):
            x = 1.0 + 79.0 * torch.rand(batch, 1, h, w, generator=gen)
        else:
            x = torch.rand(batch, 3, h, w, generator=gen)
        inputs.append(x.to(device))
    return tuple(inputs)


def count_flops(model: torch.nn.Module, input_size: Sequence[int], batch: int = 1) -> int:
    """FLOPs of one forward pass at ``input_size`` (H, W) for ``batch`` images, in eval mode.

    Counted on a copy of the model on the ``meta`` device: shapes only, no arithmetic, so the
    teacher at 1216 x 352 costs milliseconds instead of seconds.
    """
    meta_model = copy.deepcopy(model).to("meta").eval()
    inputs = example_inputs(model, input_size, batch, "meta")
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        meta_model(*inputs)
    return int(counter.get_total_flops())


def measure_latency(model: torch.nn.Module, input_size: Sequence[int], device: str | torch.device = "cpu",
                    runs: int = 10, warmup: int = 2, batch: int = 1) -> dict[str, float]:
    """Time of a forward pass in eval mode over ``runs`` (ms): wall-clock median/mean/min, and
    ``cpu_ms``, the median process CPU time (all threads) -- the work itself, which other jobs on
    a shared machine do not inflate the way they inflate wall-clock time."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    device = torch.device(device)
    was_training = model.training
    model.eval().to(device)
    inputs = example_inputs(model, input_size, batch, device)
    times, cpu = [], []
    try:
        with torch.inference_mode():
            for i in range(warmup + runs):
                _sync(device)
                start, start_cpu = time.perf_counter(), time.process_time()
                model(*inputs)
                _sync(device)
                if i >= warmup:
                    times.append((time.perf_counter() - start) * 1e3)
                    cpu.append((time.process_time() - start_cpu) * 1e3)
    finally:
        model.train(was_training)
    return {"median_ms": statistics.median(times), "mean_ms": statistics.fmean(times),
            "min_ms": min(times), "cpu_ms": statistics.median(cpu), "runs": float(runs)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _size(input_size: Sequence[int]) -> tuple[int, int]:
    if len(input_size) != 2 or min(int(s) for s in input_size) < 1:
        raise ValueError(f"input_size must be (H, W) with positive sizes, got {tuple(input_size)}")
    return int(input_size[0]), int(input_size[1])


# --- model tables: every registered model, next to the papers' figures -------------------------

#: The papers' figures. LSPKD tables 1 and 2 give "# Params (M) / GFLOPs" at the stated
#: resolution (H, W); CDSPN table 4.3 gives parameters only. See :func:`paper_note`.
PAPER_FIGURES: dict[str, dict[str, Any]] = {
    "lspkd_teacher": {"params_m": 51.77, "gflops": {(220, 912): 349.36, (228, 304): 112.32},
                      "source": "LSPKD tab. 1, 2"},
    "lspkd_student:width=0.5": {"params_m": 8.56, "gflops": {(220, 912): 59.22}, "source": "LSPKD tab. 1"},
    "lspkd_student:width=0.125": {"params_m": 0.66, "gflops": {(228, 304): 1.46}, "source": "LSPKD tab. 2"},
    "cdspn:scale=32": {"params_m": 0.4, "source": "CDSPN tab. 4.3"},
    "cdspn:scale=64": {"params_m": 1.2, "source": "CDSPN tab. 4.3"},
    "cdspn:scale=96": {"params_m": 2.6, "source": "CDSPN tab. 4.3"},
}

#: Variants profiled for a registered name instead of its default arguments.
VARIANTS: dict[str, tuple[str, ...]] = {
    "lspkd_student": ("lspkd_student:width=0.5", "lspkd_student:width=0.125"),
    "cdspn": ("cdspn:scale=32", "cdspn:scale=64", "cdspn:scale=96"),
}

TABLE_SIZES: tuple[tuple[int, int], ...] = ((352, 1216), (228, 304))


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"lspkd_student:width=0.125,adapters=true"`` -> ``("lspkd_student", {"width": 0.125, ...})``.

    Values are parsed as yaml scalars (numbers, booleans, strings).
    """
    name, _, args = spec.partition(":")
    kwargs: dict[str, Any] = {}
    for item in filter(None, (a.strip() for a in args.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"model spec '{spec}': '{item}' must look like key=value "
                             "(e.g. lspkd_student:width=0.125)")
        kwargs[key.strip()] = yaml.safe_load(value)
    return name.strip(), kwargs


def build_spec(spec: str) -> torch.nn.Module:
    """Build the model a spec names (a registered name with keyword arguments, or a model file,
    training checkpoint or ``shipped``: the trained model); bad keyword arguments are an error naming
    the spec."""
    from lumde_depth.models import build
    from lumde_depth.models.io import SHIPPED, load_model, model_file
    if spec in SHIPPED or spec.endswith(".pt") or Path(spec).is_file():
        return load_model(model_file(spec))[0]
    name, kwargs = parse_spec(spec)
    try:
        return build(name, **kwargs)
    except TypeError as exc:
        raise ValueError(f"model spec '{spec}': {exc}") from None


def default_specs() -> list[str]:
    """Every registered model, with the papers' variants where they have several."""
    from lumde_depth.models import names
    return [spec for name in names() for spec in VARIANTS.get(name, (name,))]


def size_key(size: Sequence[int]) -> str:
    """``(352, 1216)`` -> ``"1216x352"`` (W x H, as the papers write resolutions)."""
    return f"{int(size[1])}x{int(size[0])}"


def profile_spec(spec: str, sizes: Sequence[Sequence[int]] = TABLE_SIZES,
                 latency_size: Sequence[int] | None = (228, 304), runs: int = 5, warmup: int = 1,
                 device: str | torch.device = "cpu", large_params: float = 20e6,
                 large_runs: int = 1) -> dict[str, Any]:
    """Params, GFLOPs at each size (and at the paper's resolutions) and latency of one model spec.

    Models above ``large_params`` parameters are timed with ``large_runs`` runs only (the teacher
    takes seconds per frame on a small CPU). ``runs=0`` or ``latency_size=None`` skips latency.
    """
    model = build_spec(spec).eval()
    paper = PAPER_FIGURES.get(spec, {})
    params = count_params(model)
    row: dict[str, Any] = {
        "model": spec, "params_m": params / 1e6,
        "gflops": {size_key(s): count_flops(model, s) / 1e9 for s in sizes},
        "paper_params_m": paper.get("params_m"), "paper_source": paper.get("source"),
        "paper_gflops": {size_key(s): v for s, v in paper.get("gflops", {}).items()},
        "gmacs_at_paper_size": {size_key(s): count_flops(model, s) / 2e9 for s in paper.get("gflops", {})},
    }
    n = min(runs, large_runs) if params > large_params else runs
    if latency_size is not None and n > 0:
        lat = measure_latency(model, latency_size, device, runs=n, warmup=warmup)
        row.update(latency_ms=lat["median_ms"], cpu_ms=lat["cpu_ms"], latency_runs=n,
                   latency_size=size_key(latency_size), device=str(device))
    return row


def markdown_table(rows: Sequence[dict[str, Any]], sizes: Sequence[Sequence[int]] = TABLE_SIZES) -> str:
    """The rows of :func:`profile_spec` as a markdown table (ours next to the papers')."""
    lat_size = next((r["latency_size"] for r in rows if "latency_size" in r), None)
    head = ["model", "params (M)", "paper params (M)", *(f"GFLOPs {size_key(s)}" for s in sizes),
            "paper \"GFLOPs\" @ res", "our GMACs @ paper res", f"latency {lat_size or ''} (ms)", "CPU time (ms)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        paper = "; ".join(f"{v:g} @ {k}" for k, v in r["paper_gflops"].items()) or "–"
        ours = "; ".join(f"{v:.2f} @ {k}" for k, v in r["gmacs_at_paper_size"].items()) or "–"
        cells = [f"`{r['model']}`", f"{r['params_m']:.3f}",
                 "–" if r["paper_params_m"] is None else f"{r['paper_params_m']:g} ({r['paper_source']})",
                 *(f"{r['gflops'][size_key(s)]:.2f}" for s in sizes), paper, ours,
                 f"{r['latency_ms']:.1f} (n={r['latency_runs']})" if "latency_ms" in r else "–",
                 f"{r['cpu_ms']:.1f}" if "cpu_ms" in r else "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paper_note() -> str:
    """How to read the FLOP columns against the papers."""
    return ("GFLOPs = `torch.utils.flop_counter.FlopCounterMode` FLOPs / 1e9: a multiply-add counts 2 "
            "(convolutions, transposed convolutions, matrix products only; element-wise ops, "
            "normalisation, interpolation and the DA-CSPN++ propagation count 0). The papers' "
            "\"FLOPs\" are compared with our multiply-accumulates (GMACs = GFLOPs / 2) at the paper's "
            "resolution. Inputs are padded to the network stride (LSPKD 32, CDSPN 16), so e.g. "
            "912x220 is computed at 928x224.")
