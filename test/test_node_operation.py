"""Running the node as an operator does (issue 14, Operation), over real DDS: stop signals, parameters
changed at run time, misspelt parameters, memory after an oversized frame."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (pip install -r requirements-ros.txt)")

import node_harness as harness  # noqa: E402
from conftest import next_domain_id  # noqa: E402

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return harness.save_student(tmp_path_factory.mktemp("model") / "cdspn32.pt")


@pytest.fixture(scope="module")
def small_file(tmp_path_factory) -> Path:
    return harness.save_frame(tmp_path_factory.mktemp("frames") / "small.npz", harness.synthetic_frame(96, 320, 20_000))


def _params(model_file: Path, frame_file: Path, **extra) -> dict:
    frame = dict(np.load(frame_file))
    return {"model": str(model_file), "backend": "torch", "device": "cpu", "T_cam_lidar": frame["T"].ravel(),
            "threads": 1, **extra}


def _status_mb(pid: int, *keys: str) -> tuple[float, ...]:
    """Fields of /proc/PID/status in MB (VmRSS: resident; VmHWM: its peak; RssAnon / RssShmem: its parts)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return tuple(int(fields[key].split()[0]) / 1024.0 for key in keys)


# ---------------------------------------------------------------------------------------------- memory

@pytest.mark.slow
def test_memory_returns_to_its_steady_level_after_an_oversized_frame(tmp_path, model_file):
    """KITTI-sized frames, one 4096x3000 frame, KITTI-sized frames again: the node's RSS comes back to within
    30 MB of its steady level before the big frame (-54 to +8 MB measured). It stayed 43-102 MB above while Fast
    DDS kept the big image's and depth's payloads (rmw_fastrtps's PREALLOCATED_WITH_REALLOC; the shipped profile's
    DYNAMIC, with RMW_FASTRTPS_USE_QOS_FROM_XML=1, frees them), up to 93 MB without the node's malloc_trim, and
    up to 27 MB (50 MB in longer runs) while the big frame's arrays grew the worker's arena (ros.heap.FrameHeap);
    figures in docs/reliability.md."""
    if not Path("/proc/self/status").is_file():
        pytest.skip("needs /proc to read the node's RSS")
    frame = harness.synthetic_frame(375, 1242, 60_000)
    big = harness.synthetic_frame(3000, 4096, 120_000)
    params = {"model": str(model_file), "backend": "torch", "device": "cpu", "T_cam_lidar": frame["T"].ravel(),
              "threads": 1, "diagnostics_period": 0.3}
    live = harness.LiveNode(tmp_path, params, next_domain_id(), frame)
    pid = live.proc.pid
    try:
        def levels(rounds: int) -> np.ndarray:
            """VmRSS, RssAnon, RssShmem after each of ``rounds`` rounds of 5 frames, the node idle (every set
            accounted for: no frame's arrays in flight)."""
            rss, before = [], live.count("processed")
            for _ in range(rounds):
                for _ in range(5):
                    live.send_good()
                    live.listener.spin_until(lambda: False, 0.25)
                live.settle()
                rss.append(_status_mb(pid, "VmRSS", "RssAnon", "RssShmem"))
            assert live.count("processed") >= before + rounds, live.diag()
            return np.array(rss)

        levels(4)   # warm-up
        steady, steady_anon, steady_shm = np.median(levels(4), axis=0)
        hwm_before = _status_mb(pid, "VmHWM")[0]
        stamp = live.send(*harness.frame_messages(big))
        live.wait(lambda: stamp in live.published(), 120.0, "no depth image of the 4096x3000 frame")
        after, after_anon, after_shm = np.median(levels(4), axis=0)
        peak = _status_mb(pid, "VmHWM")[0]
    finally:
        live.close()
    print(f"node RSS: steady {steady:.0f} MB (anonymous {steady_anon:.0f}, shared memory {steady_shm:.0f}), peak "
          f"with the 4096x3000 frame {peak:.0f} MB, 20 KITTI frames after it {after:.0f} MB (anonymous "
          f"{after_anon:.0f}, shared memory {after_shm:.0f}): {after - steady:+.0f} MB")
    assert peak > max(hwm_before, steady + 100), "the big frame should have raised the peak RSS (is it processed?)"
    assert after < steady + 30, f"RSS stayed {after - steady:.0f} MB above its steady level"


# ---------------------------------------------------------------------------------------------- stop signals

def _catches_stop_signals(pid: int) -> bool:
    """Whether the process has its own SIGINT and SIGTERM handlers (SigCgt of /proc/PID/status): before that,
    in the interpreter's own start-up, no program can catch them."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return all(caught >> (s - 1) & 1 for s in (signal.SIGINT, signal.SIGTERM))


def _stop_tries(tmp_path: Path, ros_context, model_file: Path, frame_file: Path, sig: int, tries: int) -> None:
    """Start the node (its entry point, as ``lumde_depth_node`` runs it) with frames flowing; send ``sig``
    during start-up on even tries (a random moment once the entry point's handlers are in: imports, model
    load, DDS set-up) and while depth is being published on odd ones; every exit must be 0 with no traceback."""
    from sensor_msgs.msg import Image

    rng = random.Random(tries * 100 + sig)
    depth_topic = f"/stop_test_{os.getpid()}/depth"   # not another test's node on a shared domain id
    listener = harness.Listener(ros_context, {depth_topic: Image})
    failures = []
    try:
        for k in range(tries):
            log = tmp_path / f"node_{sig}_{k}.log"
            cmd = harness.node_command(_params(model_file, frame_file), {"depth/image": depth_topic})
            cmd = [sys.executable, "-m", "lumde_depth.ros.node_main", *cmd[cmd.index("--ros-args"):]]
            with open(log, "w") as out:
                node = subprocess.Popen(cmd, env=harness.ros_env(), stdout=out, stderr=subprocess.STDOUT)
            pub = harness.start_publisher(frame_file, rate=10.0, count=100_000)
            try:
                deadline = time.monotonic() + 60.0
                while not _catches_stop_signals(node.pid) and time.monotonic() < deadline:
                    time.sleep(0.01)
                if k % 2 == 0:
                    time.sleep(rng.uniform(0.0, 4.0))
                else:
                    listener.got[depth_topic].clear()
                    assert listener.spin_until(lambda: listener.got[depth_topic], 120.0, [node], log), \
                        log.read_text()
                    time.sleep(rng.uniform(0.0, 0.5))
                node.send_signal(sig)
                try:
                    rc = node.wait(30)
                except subprocess.TimeoutExpired:
                    rc = "none within 30 s of the signal"
            finally:
                harness.stop(pub)
                if node.poll() is None:
                    node.kill()
                    node.wait()
            text = log.read_text()
            if rc != 0 or "Traceback" in text:
                failures.append(f"try {k}: exit {rc}\n{text[-2000:]}")
    finally:
        listener.close()
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signals_exit_0(tmp_path, ros_context, model_file, small_file, sig):
    """One stop during start-up, one while publishing; 10 of each in the slow variant."""
    _stop_tries(tmp_path, ros_context, model_file, small_file, sig, 2)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signals_exit_0_ten_times(tmp_path, ros_context, model_file, small_file, sig):
    _stop_tries(tmp_path, ros_context, model_file, small_file, sig, 10)


# ---------------------------------------------------------------------------------------------- parameters

def test_parameters_change_at_run_time_and_misspelt_ones_are_named(tmp_path, ros_context, model_file, small_file):
    """A params file with ``qos_relaibility`` starts the node with a warning naming ``qos_reliability``;
    over the parameter service (as ``ros2 param set``) decimation changes the published cloud, a model
    change and an out-of-order depth range are refused with the reason."""
    import yaml
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import PointCloud2

    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"qos_relaibility": "reliable"}}}))
    name = f"lumde_depth_node_{os.getpid()}_{next_domain_id()}"
    cmd = harness.node_command(_params(model_file, small_file, publish_colored=False), name=name)
    log = tmp_path / "node.log"
    with open(log, "w") as out:
        node = subprocess.Popen([*cmd, "--params-file", str(params_file)], env=harness.ros_env(), stdout=out,
                                stderr=subprocess.STDOUT)
    listener = harness.Listener(ros_context, {"depth/points": PointCloud2})
    client = listener.node.create_client(SetParameters, f"/{name}/set_parameters")
    pub = harness.start_publisher(small_file, rate=4.0, count=100_000)

    def set_parameter(key: str, value: object):
        request = SetParameters.Request(parameters=[Parameter(key, value=value).to_parameter_msg()])
        future = client.call_async(request)
        assert listener.spin_until(future.done, 30.0, [node], log), log.read_text()
        return future.result().results[0]

    try:
        assert listener.spin_until(lambda: listener.got["depth/points"], 120.0, [node], log), log.read_text()
        assert "unknown parameter 'qos_relaibility' (from a params file or -p) is ignored: did you mean " \
               "'qos_reliability'?" in log.read_text()
        first = listener.got["depth/points"][-1]
        assert (first.height, first.width) == (96, 320)

        result = set_parameter("decimation", 4)
        assert result.successful, result.reason
        listener.got["depth/points"].clear()
        assert listener.spin_until(lambda: any(m.width == 80 for m in listener.got["depth/points"]), 60.0,
                                   [node], log), [(m.height, m.width) for m in listener.got["depth/points"]]
        assert all((m.height, m.width) in ((96, 320), (24, 80)) for m in listener.got["depth/points"])

        refused = set_parameter("model", "other.pt")
        assert not refused.successful
        assert refused.reason == ("model cannot change while the node runs (the networks are loaded at start-up): "
                                  "restart the node with model:=other.pt")
        refused = set_parameter("min_depth", 500.0)
        assert not refused.successful and "must be below max_depth" in refused.reason
        refused = set_parameter("slop", 20.0)
        assert not refused.successful and "slop" in refused.reason and "10" in refused.reason
        assert "parameters changed: decimation=4" in log.read_text()
    finally:
        harness.stop(pub)
        harness.stop(node)
        listener.close()
    assert node.returncode == 0
