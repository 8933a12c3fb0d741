"""``lumde demo``: a synthetic drive through the whole product, and the pictures and numbers a person wants.

Steps (each prints one line; the long ones show a progress bar):

1. ``lumde synth`` (Python API): one synthetic KITTI-like drive in the depth-completion layout, so
   the raw drive (images, Velodyne scans, calibration, timestamps) comes with dense ground truth;
2. ``lumde kitti2bag``: the raw drive -> a ROS 2 bag with kitti2bag's topics;
3. the node's pipeline over the bag, once with the chosen model and once with the classical
   IP-Basic backend: offline with ``lumde bag process`` (default), or with ``--live`` two real
   ``lumde_depth_node`` processes fed by ``lumde bag play`` over DDS (loopback, a private domain id),
   their outputs recorded;
4. per frame ``frame_XXXX.png`` (camera | LiDAR, dense depth and error map of both methods) and
   ``cloud_XXXX.png`` (the model's coloured cloud from above and from the side);
5. KITTI metrics of both methods against the ground truth: printed, ``metrics.json``, ``metrics.md``.

Everything lands in the output folder: ``synth/``, ``input_bag/``, ``output_bag/`` (the input plus the
model's depth topics; with ``--live`` the nodes' logs in ``live_logs/`` instead), the pictures and the
metrics. No rclpy import happens unless ``live`` is set.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lumde_depth import viz
from lumde_depth.config import field
from lumde_depth.ros.kitti2bag import KITTI_INPUTS

METHODS = ("model", "classical")
"""The two methods compared: the chosen model (``--model`` / the shipped student) and IP-Basic."""
MARKER = ".lumde_demo"
"""File that marks a folder as a ``lumde demo`` output (so a re-run may replace its contents)."""
OUTPUTS = ("depth/image", "depth/sparse", "depth/points")


class DemoError(RuntimeError):
    """The demo cannot run; the message names the problem and the fix."""


@dataclass
class DemoConfig:
    """What ``lumde demo`` runs (its command-line flags)."""

    frames: int = field(20, low=1, high=1000, doc="frames of the synthetic drive (10 Hz)")
    seed: int = field(0, low=0, doc="random seed of the synthetic drive")
    model: str = field("", doc="model file (.pt or .onnx); empty = the shipped student lumde_depth/weights/student.pt")
    backend: str = field("auto", choices=("auto", "torch", "onnxruntime", "classical"), doc="backend of the model")
    device: str = field("auto", doc="auto, cpu, cuda or cuda:N")
    camera_scale: float = field(1.0, low=0.05, high=1.0, doc="image size relative to KITTI's 1242x375")
    decimation: int = field(2, low=1, high=32, doc="depth/points keeps every n-th pixel (cloud pictures too)")
    workers: int = field(2, low=1, high=64, doc="processes rendering the synthetic frames")
    panel_scale: float = field(0.5, low=0.1, high=1.0, doc="size of each picture panel relative to the image")
    live: bool = field(False, doc="run the real node over DDS (bag play) instead of bag process")
    rate: float = field(0.5, low=0.01, high=10.0, doc="--live: playback speed factor of the bag")
    domain_id: int = field(-1, low=-1, high=101, doc="--live: ROS_DOMAIN_ID; -1 = one derived from the process id")
    progress: bool = field(True, doc="progress bars")


@dataclass
class DemoResult:
    """What a run produced: metrics per method, the pictures, the seconds each step took."""

    out: Path
    frames: int
    metrics: dict[str, dict[str, float]]
    labels: dict[str, str]
    evaluated: int
    pictures: list[Path] = dc_field(default_factory=list)
    seconds: dict[str, float] = dc_field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------- set-up
def model_path(config: DemoConfig) -> Path | None:
    """The model file the demo runs (None for ``backend='classical'``); a clear error when it is missing."""
    from lumde_depth.inference import DEFAULT_MODEL

    if config.backend == "classical":
        return None
    if config.model:
        path = Path(config.model).expanduser()
        if not path.is_file():
            raise DemoError(f"--model {path}: no such file (give a model file from lumde train / distill / export)")
        return path
    if not DEFAULT_MODEL.is_file():
        raise DemoError(
            f"the shipped default student {DEFAULT_MODEL} is missing from this installation. Make it: distill a "
            f"student (e.g. `lumde distill --config config/train/cdspn_x32_distill.yaml`) and copy its model.pt "
            f"to {DEFAULT_MODEL}; or run the demo with --model FILE, or with --backend classical (no model)")
    return DEFAULT_MODEL


def prepare_out(out: Path) -> None:
    """Create ``out``; a previous demo's folder is emptied, any other non-empty folder is refused."""
    if out.exists() and not out.is_dir():
        raise DemoError(f"--out {out} is a file: give a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise DemoError(f"--out {out} is not empty and not a previous `lumde demo` output: give a new or empty "
                            "folder")
        for child in out.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by `lumde demo`; a re-run with the same --out replaces this folder\n")


@dataclass
class Drive:
    """The synthetic drive: raw drive folder, calibration (date) folder, ground-truth PNGs by frame index."""

    raw: Path
    calib: Path
    groundtruth: Path


def synthesize(config: DemoConfig, folder: Path) -> Drive:
    """One synthetic sequence in the KITTI depth-completion layout (all frames in ``train``)."""
    from lumde_depth.data.synth import SynthConfig, generate
    from lumde_depth.data.synth.writers import SYNTH_DATE, drive_name

    synth = SynthConfig(frames=config.frames, sequences=1, seed=config.seed, layout="kitti_dc",
                        workers=config.workers, camera_scale=config.camera_scale)
    generate(synth, folder, progress=config.progress)
    name = drive_name(0)
    drive = Drive(raw=folder / "raw" / SYNTH_DATE / name, calib=folder / "raw" / SYNTH_DATE,
                  groundtruth=folder / "train" / name / "proj_depth" / "groundtruth" / "image_02")
    if not drive.raw.is_dir() or not drive.groundtruth.is_dir():
        raise DemoError(f"the synthetic generator did not write the expected layout under {folder} "
                        f"({drive.raw}, {drive.groundtruth})")
    return drive


# ---------------------------------------------------------------------------------------------------- bags
def read_inputs(bag: Path) -> dict[int, tuple[int, np.ndarray]]:
    """Image stamp (ns) -> (frame index, rgb (H, W, 3) uint8) of the camera in a kitti2bag bag."""
    from lumde_depth.ros import convert
    from lumde_depth.ros.bag_io import open_bag, typestore

    ts = typestore()
    images: dict[int, np.ndarray] = {}
    with open_bag(bag) as reader:
        conns = [c for c in reader.connections if c.topic == KITTI_INPUTS[0]]
        for conn, _, raw in reader.messages(connections=conns):
            msg = ts.deserialize_cdr(raw, conn.msgtype)
            images[convert.stamp_to_ns(msg.header.stamp)] = convert.image_to_rgb(msg)
    return {stamp: (index, images[stamp]) for index, stamp in enumerate(sorted(images))}


def _decode(name: str, msg: Any) -> np.ndarray:
    """A depth output message as numpy: images (NaN = invalid) -> float32 with 0 invalid; clouds as they are."""
    from lumde_depth.ros import convert

    if name == "depth/points":
        return convert.cloud_to_structured(msg)
    return np.nan_to_num(convert.image_to_numpy(msg), nan=0.0).astype(np.float32)


def read_outputs(bag: Path) -> dict[int, dict[str, np.ndarray]]:
    """Image stamp (ns) -> {``depth/image``, ``depth/sparse``, ``depth/points``} from a ``bag process`` bag."""
    from lumde_depth.ros import convert
    from lumde_depth.ros.bag_io import open_bag, typestore

    ts = typestore()
    frames: dict[int, dict[str, np.ndarray]] = {}
    with open_bag(bag) as reader:
        names = {"/" + name: name for name in OUTPUTS}
        conns = [c for c in reader.connections if c.topic in names]
        for conn, _, raw in reader.messages(connections=conns):
            msg = ts.deserialize_cdr(raw, conn.msgtype)
            frames.setdefault(convert.stamp_to_ns(msg.header.stamp), {})[names[conn.topic]] = _decode(
                names[conn.topic], msg)
    return frames


def process_offline(config: DemoConfig, model: Path | None, input_bag: Path, out: Path,
                    log: Callable[[str], None]) -> tuple[dict[str, dict[int, dict[str, np.ndarray]]], str]:
    """``lumde bag process`` of the input bag with the model and with IP-Basic: their outputs by stamp,
    and the backend the model ran on."""
    from lumde_depth.inference import DepthCompleter
    from lumde_depth.ros.bag_process import process_bag
    from lumde_depth.ros.params import NodeParams
    from lumde_depth.ros.pipeline import DepthPipeline

    p = NodeParams()
    outputs, backends = {}, {}
    # the classical bag is read back and removed: it would repeat the input bag's ~3 MB per frame
    scratch = Path(tempfile.mkdtemp(prefix=".classical.", dir=out))
    for method, bag in (("model", out / "output_bag"), ("classical", scratch / "classical_bag")):
        backend = "classical" if method == "classical" else config.backend
        completer = DepthCompleter.load(model if backend != "classical" else None, backend=backend,
                                        device=config.device)
        # publish_unsupported: the demo scores both methods against the dense ground truth at every pixel
        pipeline = DepthPipeline(completer, decimation=config.decimation, min_depth=p.min_depth,
                                 max_depth=p.max_depth, colored=method == "model",
                                 color_range=(p.color_near, p.color_far), publish_unsupported=True)
        summary = process_bag(input_bag, bag, pipeline, progress=config.progress, log=log)
        written = f" -> {bag}" if method == "model" else ""
        skipped = f"; skipped {summary.errors}" if summary.errors else ""
        log(f"  {method}: {summary.written} of {summary.sets} frames{written} "
            f"(backend {completer.backend_name} on {completer.device}){skipped}")
        outputs[method] = read_outputs(bag)
        backends[method] = completer.backend_name
    shutil.rmtree(scratch)
    return outputs, backends["model"]


# ---------------------------------------------------------------------------------------------------- live
def _node_command(params: dict[str, Any], namespace: str) -> list[str]:
    exe = Path(sys.executable).parent / "lumde_depth_node"
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "lumde_depth.ros.node_main"]
    cmd += ["--ros-args", "-r", f"__ns:=/{namespace}"]
    for key, value in params.items():
        cmd += ["-p", f"{key}:={str(value).lower() if isinstance(value, bool) else value}"]
    for name, topic in zip(("image", "camera_info", "points"), KITTI_INPUTS):
        cmd += ["-r", f"{name}:={topic}"]
    return cmd


def _stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGINT (a clean shutdown), then kill if it does not exit."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def process_live(config: DemoConfig, model: Path | None, input_bag: Path, drive: Drive, out: Path,
                 log: Callable[[str], None], expected: int, timeout: float = 120.0
                 ) -> dict[str, dict[int, dict[str, np.ndarray]]]:
    """Two ``lumde_depth_node`` processes (namespaces ``model`` and ``classical``) fed by ``lumde bag play``
    over loopback DDS on a private domain; their depth outputs recorded by stamp."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, PointCloud2

    domain = config.domain_id if config.domain_id >= 0 else 1 + os.getpid() % 100
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOCALHOST_ONLY="1",
               ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED="1")
    logs = out / "live_logs"
    logs.mkdir(exist_ok=True)
    common = {"calib_file": str(drive.calib), "use_tf": False, "publish_sparse": True, "publish_colored": False,
              "decimation": config.decimation, "device": config.device, "qos_depth": 10,
              "publish_unsupported": True}   # as offline: scored against the dense ground truth everywhere
    nodes = {"model": {**common, "backend": config.backend, "model": str(model) if model else ""},
             "classical": {**common, "backend": "classical"}}
    recorded: dict[str, dict[int, dict[str, np.ndarray]]] = {m: {} for m in METHODS}
    lock = threading.Lock()
    context = Context()
    rclpy.init(context=context, domain_id=domain)
    procs: list[subprocess.Popen] = []
    handles = []
    try:
        recorder = rclpy.create_node("lumde_demo_recorder", context=context)
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)

        def keep(method: str, name: str) -> Callable[[Any], None]:
            def callback(msg: Any) -> None:
                from lumde_depth.ros import convert

                with lock:
                    recorded[method].setdefault(convert.stamp_to_ns(msg.header.stamp), {})[name] = _decode(name, msg)
            return callback

        for method in METHODS:
            for name in OUTPUTS:
                recorder.create_subscription(PointCloud2 if name == "depth/points" else Image, f"/{method}/{name}",
                                             keep(method, name), qos)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(recorder)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        for method, params in nodes.items():
            handles.append(open(logs / f"node_{method}.log", "w"))
            procs.append(subprocess.Popen(_node_command(params, method), env=env, stdout=handles[-1],
                                          stderr=subprocess.STDOUT))
        log(f"  started 2 nodes on ROS_DOMAIN_ID={domain} (loopback); logs in {logs}")
        deadline = time.monotonic() + timeout
        while not all(recorder.count_subscribers(t) >= len(nodes) for t in KITTI_INPUTS) or \
                not all(recorder.count_publishers(f"/{m}/{n}") for m in METHODS for n in OUTPUTS):
            dead = [m for m, p in zip(nodes, procs) if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise DemoError(f"the {'/'.join(dead) or 'node'} node did not come up"
                                f"{' (it exited)' if dead else f' within {timeout:.0f} s'}: see {logs}")
            time.sleep(0.1)
        time.sleep(0.5)   # let discovery settle both ways before the first message
        # The bag plays in a loop until every frame has come back from both nodes: a node that cannot keep up
        # drops sets (newest wins), and the last messages of a player that exits may never be delivered.
        play = [sys.executable, "-m", "lumde_depth.cli.main", "bag", "play", str(input_bag), "--loop", "--rate",
                str(config.rate), "--topics", *KITTI_INPUTS, "--wait-for-subscribers", "30"]
        handles.append(open(logs / "bag_play.log", "w"))
        player = subprocess.Popen(play, env=env, stdout=handles[-1], stderr=subprocess.STDOUT)
        procs.insert(0, player)
        deadline = time.monotonic() + timeout + 3 * expected / (10.0 * config.rate)
        while time.monotonic() < deadline and player.poll() is None:
            with lock:
                done = min(sum(len(f) == len(OUTPUTS) for f in recorded[m].values()) for m in METHODS)
            if done >= expected:
                break
            time.sleep(0.1)
        if player.poll() is not None:
            raise DemoError(f"lumde bag play exited early (code {player.returncode}): see {logs / 'bag_play.log'}")
        executor.shutdown()
        recorder.destroy_node()
    finally:
        for proc in procs:
            _stop(proc)
        for handle in handles:
            handle.close()
        context.try_shutdown()
    with lock:
        complete = {m: {s: f for s, f in recorded[m].items() if len(f) == len(OUTPUTS)} for m in METHODS}
        counts = {m: {n: sum(n in f for f in recorded[m].values()) for n in OUTPUTS} for m in METHODS}
    for method in METHODS:
        log(f"  {method}: recorded {len(complete[method])} of {expected} frames"
            + ("" if len(complete[method]) == expected else
               f" before the time limit (messages per output {counts[method]}; see {logs})"))
    return complete


# ---------------------------------------------------------------------------------------------------- pictures
def frame_picture(rgb: np.ndarray, sparse: np.ndarray, depths: dict[str, np.ndarray], gt: np.ndarray,
                  labels: dict[str, str], metrics: dict[str, dict[str, float]], scale: float,
                  near: float, far: float) -> np.ndarray:
    """Camera | LiDAR on top, then dense depth and error map of each method, and the two colour keys."""
    n_points = int((sparse > 0).sum())
    panels = [(rgb, "camera"), (viz.overlay_points(rgb, sparse, near, far),
                                f"LiDAR: {n_points:,} px ({100 * n_points / sparse.size:.1f}%)")]
    for method in METHODS:
        panels.append((viz.colorize(depths[method], near, far), f"depth: {labels[method]}"))
    for method in METHODS:
        panels.append((viz.error_colours(depths[method], gt),
                       f"error: {labels[method]}, RMSE {metrics[method]['rmse'] / 1e3:.2f} m"))
    size = int(np.clip(rgb.shape[1] * scale / 45, 10, 16))   # text fits a panel down to ~300 px wide
    cells = [viz.label(viz.resize(image, scale), text, size) for image, text in panels]
    body = viz.grid(cells, columns=2)
    return viz.stack([body, viz.colour_bar(body.shape[1], near, far), viz.error_bar(body.shape[1])])


def cloud_picture(cloud: np.ndarray) -> np.ndarray:
    """Bird's-eye and side views of an organized XYZRGB cloud (``depth/points``)."""
    from lumde_depth.geometry import unpack_rgb

    xyz = np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=-1)
    return viz.cloud_views(xyz, unpack_rgb(cloud["rgb"]))


def evaluate(out: Path, inputs: dict[int, tuple[int, np.ndarray]],
             outputs: dict[str, dict[int, dict[str, np.ndarray]]], drive: Drive, labels: dict[str, str],
             scale: float, progress: bool) -> tuple[dict[str, dict[str, float]], int, list[Path]]:
    """Per frame with outputs of both methods: KITTI metrics and the pictures; returns the mean metrics,
    the number of frames evaluated and the pictures written."""
    from tqdm import tqdm

    from lumde_depth.data.depth_io import read_depth_png
    from lumde_depth.engine.metrics import MetricAccumulator, kitti_metrics
    from lumde_depth.ros.params import NodeParams

    p = NodeParams()
    stamps = sorted(set(inputs) & set(outputs["model"]) & set(outputs["classical"]))
    if not stamps:
        raise DemoError("no frame has outputs of both methods: nothing to evaluate (see the lines above)")
    accumulators = {m: MetricAccumulator(kitti_metrics) for m in METHODS}
    pictures = []
    for stamp in tqdm(stamps, desc="pictures", unit="frame", disable=not progress):
        index, rgb = inputs[stamp]
        gt = read_depth_png(drive.groundtruth / f"{index:010d}.png")
        depths = {m: outputs[m][stamp]["depth/image"] for m in METHODS}
        frame_metrics = {m: kitti_metrics(depths[m], gt) for m in METHODS}
        for method in METHODS:
            accumulators[method].add(frame_metrics[method])
        picture = frame_picture(rgb, outputs["model"][stamp]["depth/sparse"], depths, gt, labels, frame_metrics,
                                scale, p.color_near, p.color_far)
        pictures.append(viz.save_png(out / f"frame_{index:04d}.png", picture))
        cloud = cloud_picture(outputs["model"][stamp]["depth/points"])
        pictures.append(viz.save_png(out / f"cloud_{index:04d}.png", cloud))
    return {m: accumulators[m].result() for m in METHODS}, len(stamps), pictures


# ---------------------------------------------------------------------------------------------------- metrics
def metrics_markdown(result: DemoResult, resolution: tuple[int, int], mode: str) -> str:
    """The side-by-side table of both methods (KITTI devkit metrics, mean over frames)."""
    lines = [f"KITTI metrics over {result.evaluated} synthetic frames at {resolution[1]}x{resolution[0]} "
             f"(ground truth: dense depth up to 80 m, {mode}); lower is better.", "",
             "| method | RMSE (mm) | MAE (mm) | iRMSE (1/km) | iMAE (1/km) |", "| --- | ---: | ---: | ---: | ---: |"]
    for method in METHODS:
        m = result.metrics[method]
        lines.append(f"| {result.labels[method]} | {m['rmse']:,.1f} | {m['mae']:,.1f} | {m['irmse']:.2f} | "
                     f"{m['imae']:.2f} |")
    return "\n".join(lines) + "\n"


def write_metrics(result: DemoResult, resolution: tuple[int, int], mode: str) -> str:
    table = metrics_markdown(result, resolution, mode)
    (result.out / "metrics.md").write_text(table)
    payload = {"frames": result.frames, "evaluated": result.evaluated, "resolution": list(resolution), "mode": mode,
               "methods": [{"method": m, "label": result.labels[m], **result.metrics[m]} for m in METHODS],
               "seconds": result.seconds}
    (result.out / "metrics.json").write_text(json.dumps(payload, indent=2) + "\n")
    return table


# ---------------------------------------------------------------------------------------------------- main
def run_demo(config: DemoConfig, out: str | Path, log: Callable[[str], None] = print) -> DemoResult:
    """Run the whole demo into ``out`` (see the module docstring); returns the metrics and pictures."""
    from lumde_depth.ros.kitti2bag import kitti2bag

    out = Path(out)
    model = model_path(config)   # fail before any work when the model is missing
    prepare_out(out)
    seconds: dict[str, float] = {}
    mode = "live node over DDS" if config.live else "lumde bag process"
    steps = 5

    def step(k: int, text: str) -> float:
        log(f"[{k}/{steps}] {text}")
        return time.perf_counter()

    t = step(1, f"synthetic drive: {config.frames} frames, seed {config.seed} -> {out / 'synth'}")
    drive = synthesize(config, out / "synth")
    seconds["synth"] = time.perf_counter() - t
    t = step(2, f"kitti2bag -> {out / 'input_bag'}")
    kitti2bag(drive.raw, out / "input_bag", progress=config.progress)
    seconds["kitti2bag"] = time.perf_counter() - t
    name = model.name if model else "IP-Basic"
    labels = {"model": f"{name} ({config.backend})", "classical": "classical IP-Basic"}
    t = step(3, f"depth pipeline ({mode}): {labels['model']} and {labels['classical']}")
    if config.live:
        outputs = process_live(config, model, out / "input_bag", drive, out, log, config.frames)
    else:
        outputs, backend = process_offline(config, model, out / "input_bag", out, log)
        labels["model"] = f"{name} ({backend})"
    seconds["pipeline"] = time.perf_counter() - t
    t = step(4, f"pictures and KITTI metrics -> {out}/frame_XXXX.png, cloud_XXXX.png")
    inputs = read_inputs(out / "input_bag")
    metrics, evaluated, pictures = evaluate(out, inputs, outputs, drive, labels, config.panel_scale,
                                            config.progress)
    seconds["pictures"] = time.perf_counter() - t
    result = DemoResult(out=out, frames=config.frames, metrics=metrics, labels=labels, evaluated=evaluated,
                        pictures=pictures, seconds={k: round(v, 2) for k, v in seconds.items()})
    resolution = next(iter(inputs.values()))[1].shape[:2]
    step(5, f"metrics -> {out / 'metrics.json'}, {out / 'metrics.md'}")
    log(write_metrics(result, resolution, mode))
    return result


