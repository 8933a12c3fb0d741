"""End-to-end latency of lumde_depth_node over real DDS, per backend, KITTI-sized frames at 10 Hz.

Three processes per backend: a publisher (test/node_harness.py: image 1242x375 rgb8, camera_info,
~120k-point cloud, at --rate for --seconds), the node, and this script listening to depth/image
and /diagnostics. Latency = arrival of depth/image here minus its image stamp (the publisher's
clock, same host). Also: output rate, sets lost (published - answered), the node's own drop
counter, node CPU (% of one core) and peak RSS from /proc, and message conversion alone.

    .venv/bin/python bench/node_latency.py                 # 60 s per backend
    .venv/bin/python bench/node_latency.py --seconds 15    # quick run
    .venv/bin/python bench/node_latency.py --default-launch --backends onnxruntime   # as launched, see below
    .venv/bin/python bench/node_latency.py --cameras 6     # six DDAD cameras: one node vs six nodes

A best-effort subscriber of depth/points in this process counts the clouds it receives (each one makes
the node build a 7 MB organized cloud). ``--default-launch`` measures the documented launch path with no
hand-set environment: nothing sets a Fast DDS profile for the node, which applies the shipped one itself
(lumde_depth.ros.dds), and the publisher and this subscriber get what kitti_replay.launch.py gives the
processes it starts (the shipped profile; ``--subscriber-profile none`` for a subscriber started on its own).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "test"), str(ROOT / "bench")]

import node_harness as harness  # noqa: E402
from _report import machine, write_section  # noqa: E402

from lumde_depth.inference import DEFAULT_MODEL  # noqa: E402
from lumde_depth.inference.backends import resolve_device  # noqa: E402
from lumde_depth.ros import dds  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK   # utime + stime


def proc_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def model_file(args: argparse.Namespace, workdir: Path) -> tuple[Path, str]:
    """The shipped student when it exists, else a random-init cdspn x32 (same cost, untrained)."""
    if args.model:
        return Path(args.model), Path(args.model).name
    if DEFAULT_MODEL.is_file():
        return DEFAULT_MODEL, "shipped student"
    import torch

    from lumde_depth.models import build
    from lumde_depth.models.io import save_model
    torch.manual_seed(0)
    path = save_model(workdir / "cdspn32.pt", build("cdspn", scale=32),
                      {"input_size": list(args.input_size), "depth_range": [0.5, 80.0], "kind": "completion"})
    return path, "cdspn x32, random init (the shipped student does not exist yet)"


def conversion_ms(frame: dict[str, np.ndarray], runs: int = 30) -> dict[str, float]:
    """Median milliseconds of each message <-> numpy conversion the node does per frame."""
    from lumde_depth.geometry import organized_cloud
    from lumde_depth.ros import convert
    header = convert.make_header(0, "camera")
    rgb, points = frame["rgb"], frame["points"].astype(np.float32)
    image, cloud = convert.numpy_to_image(rgb, "rgb8", header), convert.xyzi_to_cloud(points, header)
    depth = np.full(rgb.shape[:2], 10.0, np.float32)
    structured = organized_cloud(depth, frame["P"], rgb)
    jobs = {"image -> numpy": lambda: convert.image_to_numpy(image),
            "cloud -> xyz": lambda: convert.cloud_to_xyz(cloud),
            "depth -> Image": lambda: convert.numpy_to_image(depth, "32FC1", header),
            "organized cloud -> PointCloud2": lambda: convert.structured_to_cloud(structured, header)}
    out = {}
    for name, job in jobs.items():
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            job()
            times.append(1e3 * (time.perf_counter() - t0))
        out[name] = float(np.median(times))
    return out


def run_backend(backend: str, args: argparse.Namespace, model: Path, frame_file: Path, workdir: Path,
                domain: int) -> dict[str, object]:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, PointCloud2

    from lumde_depth.ros import convert
    frame = dict(np.load(frame_file))
    env = harness.ros_env(domain)
    env["LUMDE_CACHE"] = str(workdir / "cache")
    publisher_env = dict(env)
    if args.default_launch:   # the node as launched: no profile set for it; the player as the launch sets it
        for name in dds.PROFILE_VARIABLES:
            env.pop(name, None)
        if "OMP_NUM_THREADS" not in os.environ:   # nor a torch thread count (ros_env sets 1 for the tests)
            env.pop("OMP_NUM_THREADS")
        publisher_env = dict(env)
        dds.apply_default_profile(publisher_env)
    params = {"model": str(model), "backend": backend, "device": args.device, "input_height": args.input_size[0],
              "input_width": args.input_size[1], "T_cam_lidar": frame["T"].ravel(), "decimation": 1,
              "threads": args.threads, "diagnostics_period": 1.0}
    context = Context()
    rclpy.init(context=context, domain_id=domain)
    listener = rclpy.create_node("lumde_bench_listener", context=context)
    arrivals: list[tuple[int, int]] = []
    diagnostics: list[dict[str, str]] = []
    listener.create_subscription(Image, "depth/image", lambda m: arrivals.append(
        (convert.stamp_to_ns(m.header.stamp), time.time_ns())),
        QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    clouds: set[int] = set()
    listener.create_subscription(PointCloud2, "depth/points", lambda m: clouds.add(convert.stamp_to_ns(m.header.stamp)),
                                 QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
    listener.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diagnostics.extend(
        {kv.key: kv.value for kv in s.values} for s in m.status if "lumde_depth_node" in s.name), 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(listener)
    node = harness.start_node(params, log=workdir / f"node_{backend}.log", env=env)
    try:
        # wait for the node (model load, ONNX export on first use) before publishing
        deadline = time.monotonic() + 300
        while not listener.count_publishers("depth/image") and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            if node.poll() is not None:
                raise RuntimeError(f"node exited: {(workdir / f'node_{backend}.log').read_text()}")
        pub = harness.start_publisher(frame_file, rate=args.rate, count=0, seconds=args.seconds, env=publisher_env)
        cpu0, t0 = proc_cpu_seconds(node.pid), time.monotonic()
        first_arrival = None
        while pub.poll() is None:
            executor.spin_once(timeout_sec=0.05)
            if arrivals and first_arrival is None:
                first_arrival, cpu0, t0 = len(arrivals), proc_cpu_seconds(node.pid), time.monotonic()
        cpu = (proc_cpu_seconds(node.pid) - cpu0) / max(time.monotonic() - t0, 1e-9)
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        rss = proc_peak_rss_mb(node.pid)
        published = [line for line in pub.stdout.read().splitlines() if line.startswith("{")]
        profile_line = next((line for line in (workdir / f"node_{backend}.log").read_text().splitlines()
                             if "Fast DDS profile" in line or "RMW " in line), "")
    finally:
        harness.stop(node)
        executor.shutdown()
        listener.destroy_node()
        context.try_shutdown()
    latency = np.array([(arrive - stamp) / 1e6 for stamp, arrive in arrivals])
    span = (arrivals[-1][1] - arrivals[0][1]) / 1e9 if len(arrivals) > 1 else float("nan")
    diag = diagnostics[-1] if diagnostics else {}
    return {"backend": backend, "published": len(published), "answered": len(arrivals), "clouds": len(clouds),
            "profile": profile_line.split("]: ", 1)[-1],
            "rate": (len(arrivals) - 1) / span if len(arrivals) > 1 else 0.0,
            "p50": float(np.percentile(latency, 50)) if latency.size else float("nan"),
            "p99": float(np.percentile(latency, 99)) if latency.size else float("nan"),
            "dropped": diag.get("dropped (replaced before processing)", "?"),
            "cpu": 100.0 * cpu, "rss": rss,
            "stages": {k.replace(" mean (ms)", ""): v for k, v in diag.items() if k.endswith("mean (ms)")}}


def _input_size(args: argparse.Namespace) -> str:
    if args.input_size[0]:
        return f"{args.input_size[1]}x{args.input_size[0]}"
    return "the model's pixel count at the image's aspect ratio (fit aspect; KITTI: the model's own 621x188)"


def _machine_line(args: argparse.Namespace, load_before: float, load_after: float) -> str:
    gpu = f", GPU {torch.cuda.get_device_name(args.device)}" if args.device.startswith("cuda") else ""
    return (f"Machine: {machine()}{gpu}; network device {args.device}; 1-minute load average {load_before:.1f} before "
            f"and {load_after:.1f} after the run (other work on the machine slows every figure below when it is "
            "above ~1).")


OUTPUTS = ("depth/image", "depth/camera_info", "depth/points", "depth/confidence", "depth/colored")


def rig_frames(shared: Path | None, count: int) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray, str]:
    """``count`` DDAD-sized cameras around one LiDAR: the DDAD test scene's (sample 0, 1936x1216) when the shared
    data is there, else generated frames of that size (one scan seen by every camera)."""
    if shared is not None and (shared / "ddad_testscene").is_dir():
        from lumde_depth.data.ddad import ddad_scenes
        scene = next(s for s in ddad_scenes(shared / "ddad_testscene") if len(s.cameras) >= count)
        frames = {c: scene.frame(0, c) for c in scene.cameras[:count]}
        return ({c: {"rgb": f.rgb, "P": np.hstack([f.K, np.zeros((3, 1))]), "T": f.T_cam_lidar}
                 for c, f in frames.items()}, scene.scan(0),
                f"DDAD test scene {scene.name} sample 0")
    frame = harness.synthetic_frame(1216, 1936, 50_000)
    return ({f"CAMERA_{i + 1:02d}": {"rgb": frame["rgb"], "P": frame["P"], "T": frame["T"]} for i in range(count)},
            frame["points"], "generated DDAD-sized frames")


def run_rig(one_node: bool, args: argparse.Namespace, model: Path, rig_file: Path, workdir: Path,
            domain: int) -> dict[str, object]:
    """The rig's cameras through one node (parameter ``cameras``) or one node per camera; per camera the output
    rate, and the latency of every depth/image."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from lumde_depth.ros import convert
    cameras, _points = harness.load_rig(rig_file)
    env = harness.ros_env(domain)
    env["LUMDE_CACHE"] = str(workdir / "cache")
    if "OMP_NUM_THREADS" not in os.environ:   # the nodes as launched: torch's threads one per core (ros_env sets 1)
        env.pop("OMP_NUM_THREADS")
    base = {"model": str(model), "backend": args.backends[0], "device": args.device, "threads": args.threads,
            "input_height": args.input_size[0], "input_width": args.input_size[1], "diagnostics_period": 1.0}
    context = Context()
    rclpy.init(context=context, domain_id=domain)
    listener = rclpy.create_node("lumde_bench_listener", context=context)
    arrivals: dict[str, list[tuple[int, int]]] = {c: [] for c in cameras}
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    for c in cameras:
        listener.create_subscription(Image, f"{c}/depth/image", lambda m, c=c: arrivals[c].append(
            (convert.stamp_to_ns(m.header.stamp), time.time_ns())), reliable)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(listener)
    label = "one node" if one_node else f"{len(cameras)} nodes"
    if one_node:
        nodes = [harness.start_node({**base, "cameras": list(cameras),
                                     **{f"{c}.T_cam_lidar": cameras[c]["T"].ravel() for c in cameras}},
                                    log=workdir / "node_rig.log", env=env)]
    else:
        nodes = [harness.start_node({**base, "T_cam_lidar": cameras[c]["T"].ravel()},
                                    {"image": f"{c}/image", "camera_info": f"{c}/camera_info",
                                     **{topic: f"{c}/{topic}" for topic in OUTPUTS}},
                                    log=workdir / f"node_{c}.log", env=env, name=f"lumde_depth_node_{c}")
                 for c in cameras]
    try:
        deadline = time.monotonic() + 300
        while not all(listener.count_publishers(f"{c}/depth/image") for c in cameras) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            if any(n.poll() is not None for n in nodes):
                raise RuntimeError(f"{label}: a node exited; logs in {workdir}")
        pub = harness.start_publisher(rig_file, rate=args.rate, count=0, seconds=args.seconds, env=env,
                                      cameras=tuple(cameras))
        cpu0, t0 = sum(proc_cpu_seconds(n.pid) for n in nodes), time.monotonic()
        pub_cpu = 0.0
        while pub.poll() is None:
            executor.spin_once(timeout_sec=0.05)
            try:
                pub_cpu = proc_cpu_seconds(pub.pid)
            except (OSError, IndexError):   # it has just exited
                pass
        seconds = max(time.monotonic() - t0, 1e-9)
        cpu_s = sum(proc_cpu_seconds(n.pid) for n in nodes) - cpu0
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        rss = sum(proc_peak_rss_mb(n.pid) for n in nodes)
        published = [line for line in pub.stdout.read().splitlines() if line.startswith("{")]
    finally:
        for n in nodes:
            harness.stop(n)
        executor.shutdown()
        listener.destroy_node()
        context.try_shutdown()
    rates = [(len(a) - 1) / ((a[-1][1] - a[0][1]) / 1e9) if len(a) > 1 else 0.0 for a in arrivals.values()]
    latency = np.array([(arrive - stamp) / 1e6 for a in arrivals.values() for stamp, arrive in a])
    answered = [len(a) for a in arrivals.values()]
    return {"label": label, "published": len(published), "answered": answered,
            "delivered": 100.0 * np.mean(answered) / max(len(published), 1),
            "rate": float(np.mean(rates)), "rate_min": float(np.min(rates)),
            "p50": float(np.percentile(latency, 50)) if latency.size else float("nan"),
            "p99": float(np.percentile(latency, 99)) if latency.size else float("nan"), "cpu": 100.0 * cpu_s / seconds,
            "cpu_per_frame": 1e3 * cpu_s / max(sum(answered), 1), "publisher_cpu": 100.0 * pub_cpu / seconds,
            "rss": rss}


def rig_main(args: argparse.Namespace) -> int:
    """``--cameras N``: N DDAD-sized cameras and one LiDAR through one node, then through N separate nodes."""
    from conftest import shared_data_dir
    shared = shared_data_dir()
    harness.use_large_messages_profile()   # six 7 MB images per sweep: shared memory, as the shipped launch gives
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        cameras, points, source = rig_frames(shared if shared.is_dir() else None, args.cameras)
        rig_file = harness.save_rig(workdir / "rig.npz", cameras, points)
        model, model_name = model_file(args, workdir)
        load_before = os.getloadavg()[0]
        rows = [run_rig(one, args, model, rig_file, workdir, 70 + i) for i, one in enumerate((True, False))]
        load_after = os.getloadavg()[0]
    (h, w), n = next(iter(cameras.values()))["rgb"].shape[:2], len(cameras)
    input_size = _input_size(args)
    lines = [_machine_line(args, load_before, load_after),
             f"Input: {source}: {n} cameras {w}x{h} rgb8 + camera_info each and one {len(points)}-point cloud, "
             f"published together at {args.rate:g} Hz for {args.seconds:g} s per configuration over loopback DDS "
             "(every process with config/fastdds_large_messages.xml: shared memory). "
             f"Model: {model_name}, backend {args.backends[0]}, network input {input_size}. "
             f"One node: parameter cameras (the cloud converted once per sweep, the {n} images in one network run); "
             f"{n} nodes: one per camera, each converting the cloud and running the network alone. Every node as "
             "launched: OMP_NUM_THREADS unset, torch with one thread per core (the one node: its cameras on 2 "
             "threads with 1 torch thread each; each of the nodes per camera: 2 torch threads). Latency = "
             "depth/image arrival here minus its image stamp, over every camera. Delivered: depth answered per "
             "camera / sweeps published. CPU in % of one core, all nodes; per frame: the nodes' CPU time over the run "
             "/ depth images answered. The publisher (a stand-in for the camera and LiDAR drivers) shares the 2 cores: "
             "where the nodes starve it, it publishes fewer sweeps than asked for, and the nodes face less input.", "",
             "| configuration | sweeps published | depth answered per camera | delivered (%) | throughput per camera "
             "(Hz, mean / min) | latency p50 (ms) | latency p99 (ms) | node CPU (%) | node CPU per frame (ms) "
             "| publisher CPU (%) | node peak RSS (MB, sum) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['published']} | {', '.join(map(str, r['answered']))} | {r['delivered']:.0f} "
                     f"| {r['rate']:.2f} / {r['rate_min']:.2f} | {r['p50']:.0f} | {r['p99']:.0f} | {r['cpu']:.0f} | "
                     f"{r['cpu_per_frame']:.0f} | {r['publisher_cpu']:.0f} | {r['rss']:.0f} |")
    flag = f" --rate {args.rate:g}" if args.rate != 10 else ""
    lines += ["", f"Run: `.venv/bin/python bench/node_latency.py --cameras {n}{flag}` (add `--seconds 15` for a quick "
                  "run)."]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        suffix = "" if args.rate == 10 else f"_{args.rate:g}hz".replace(".", "_")
        write_section(f"node_latency_rig{suffix}", f"## One node for {n} cameras vs one node per camera at "
                                                   f"{args.rate:g} Hz (`bench/node_latency.py --cameras {n}{flag}`)"
                                                   "\n\n" + text)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="publishing time per backend")
    parser.add_argument("--rate", type=float, default=10.0, help="publishing rate (Hz)")
    parser.add_argument("--backends", nargs="+", default=["onnxruntime", "torch", "classical"])
    parser.add_argument("--input-size", type=int, nargs=2, default=(0, 0), metavar=("H", "W"),
                        help="network input size (default 0 0: the model's own)")
    parser.add_argument("--large-messages-profile", action="store_true",
                        help="run every process with config/fastdds_large_messages.xml (shared memory), "
                             "limited to loopback; written to section node_latency_shm")
    parser.add_argument("--default-launch", action="store_true",
                        help="the documented launch path, no hand-set environment: the node applies the shipped "
                             "profile itself; written to section node_latency_default")
    parser.add_argument("--subscriber-profile", choices=("shipped", "none"), default="shipped",
                        help="with --default-launch: the depth/points subscriber here uses the shipped profile (as "
                             "RViz started by kitti_replay.launch.py) or none (a process started on its own)")
    parser.add_argument("--threads", type=int, default=0, help="node inference threads (0 = library default)")
    parser.add_argument("--model", default="", help="model file (default: the shipped student)")
    parser.add_argument("--device", default="auto",
                        help="auto | cpu | cuda | cuda:N (auto: cuda when a GPU is usable; the classical backend "
                             "always runs on the CPU); a CUDA run is written to its own section")
    parser.add_argument("--cameras", type=int, default=0,
                        help="N > 0: N DDAD-sized (1936x1216) cameras around one LiDAR, one node for all of them "
                             "side by side with N separate nodes (the first of --backends); section node_latency_rig")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()
    args.device = resolve_device(args.device)
    if args.cameras:
        return rig_main(args)
    transport = "rmw_fastrtps_cpp, default transports (UDP loopback for large messages)"
    if args.large_messages_profile and args.default_launch:
        parser.error("--default-launch sets the profiles as the launch does: leave out --large-messages-profile")
    if args.large_messages_profile:
        transport = "rmw_fastrtps_cpp with config/fastdds_large_messages.xml (16 MB shared-memory segments)"
        harness.use_large_messages_profile()
    if args.default_launch:
        for name in dds.PROFILE_VARIABLES:
            os.environ.pop(name, None)
        if args.subscriber_profile == "shipped":
            dds.apply_default_profile()
        transport = ("the default launch path: the node applies the shipped profile itself, the publisher has it "
                     "as kitti_replay.launch.py gives it, the depth/points subscriber here "
                     + ("too" if args.subscriber_profile == "shipped" else "has none (Fast DDS defaults)"))
    from conftest import shared_data_dir
    shared = shared_data_dir()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        frame = harness.kitti_frame(shared if shared.is_dir() else None)
        source = f"KITTI object frame {harness.KITTI_FRAME}" if shared.is_dir() else "generated KITTI-sized frame"
        frame_file = harness.save_frame(workdir / "frame.npz", frame)
        model, model_name = model_file(args, workdir)
        conv = conversion_ms(frame)
        load_before = os.getloadavg()[0]
        rows = [run_backend(b, args, model, frame_file, workdir, 60 + i) for i, b in enumerate(args.backends)]
        load_after = os.getloadavg()[0]
    h, w = frame["rgb"].shape[:2]
    input_size = _input_size(args)
    lines = [_machine_line(args, load_before, load_after),
             f"Input: {source}, {w}x{h} rgb8 + camera_info + {len(frame['points'])}-point cloud at "
             f"{args.rate:g} Hz for {args.seconds:g} s per backend, over loopback DDS ({transport}). Model: "
             f"{model_name}, network input {input_size} "
             f"(exact rescaling, see DepthCompleter; the classical backend is IP-Basic at full resolution). "
             f"Latency = depth/image arrival in a third process minus the image stamp. CPU in % of one core.", "",
             "| backend | sets published | depth answered | best-effort clouds received | output rate (Hz) "
             "| latency p50 (ms) | latency p99 (ms) | dropped by node | node CPU (%) | node peak RSS (MB) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        share = f" ({100 * r['clouds'] / r['published']:.0f} %)" if r["published"] else ""
        lines.append(f"| {r['backend']} | {r['published']} | {r['answered']} | {r['clouds']}{share} | {r['rate']:.2f} | "
                     f"{r['p50']:.0f} | {r['p99']:.0f} | {r['dropped']} | {r['cpu']:.0f} | {r['rss']:.0f} |")
    lines += ["", "Node log: " + "; ".join(sorted({r["profile"] for r in rows if r["profile"]}) or ["-"])]
    stage_names = sorted({k for r in rows for k in r["stages"]})
    lines += ["", "Node stage means (ms, from /diagnostics):", "",
              "| stage | " + " | ".join(r["backend"] for r in rows) + " |", "|---|" + "---|" * len(rows)]
    lines += [f"| {s} | " + " | ".join(str(r["stages"].get(s, "-")) for r in rows) + " |" for s in stage_names]
    lines += ["", "Message conversion alone (median ms, this process):", "", "| conversion | ms |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in conv.items()]
    flag = " --large-messages-profile" if args.large_messages_profile else ""
    if args.default_launch:
        flag = " --default-launch" + (" --subscriber-profile none" if args.subscriber_profile == "none" else "")
    lines += ["", f"Run: `.venv/bin/python bench/node_latency.py{flag}` (add `--seconds 15` for a quick run; "
              "`--device cpu` on a machine with a GPU for the CPU figures)."]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        name = ("node_latency_shm" if args.large_messages_profile else
                "node_latency_default" + ("_nosub" if args.subscriber_profile == "none" else "")
                if args.default_launch else "node_latency") + ("_cuda" if args.device.startswith("cuda") else "")
        title = (" with the large-message Fast DDS profile" if args.large_messages_profile else
                 " on the default launch path" + (", subscriber without the profile"
                                                   if args.subscriber_profile == "none" else "")
                 if args.default_launch else "") + (
            f" on {args.device}" if args.device.startswith("cuda") else "")
        write_section(name, f"## Node latency{title} (`bench/node_latency.py{flag}`)\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
