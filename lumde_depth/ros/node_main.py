"""``lumde_depth_node``'s entry point: SIGINT and SIGTERM stop the node cleanly and exit 0, whenever they come.

rclpy's own signal handlers shut the context down from inside the signal, which races with whatever the
executor, the worker thread or the start-up is doing at that instant (``RCLError: ... context is not
valid`` about once in 15 stops), and they are not installed while the heavy imports (torch, rclpy) and
the model load run, when a signal kills the process or raises ``KeyboardInterrupt``. Here the handlers are
installed before anything heavy is imported (this module imports only the standard library) and rclpy
installs none. Before ``rclpy.init`` (the imports, seconds on a loaded machine) a signal ends the process
at once with exit code 0: there is nothing to clean up yet, and an exception raised inside an import would
surface as an ``ImportError``. From ``rclpy.init`` on, a signal only sets a flag: the node is not started
(or not spun) once it is set, and the main loop then destroys the node and shuts rclpy down, in that
order. Further signals during the shutdown change nothing.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

_stop = threading.Event()
_initialized = threading.Event()   # rclpy.init ran: from then on a stop signal only sets _stop


def _request_stop(_signum: int, _frame: Any) -> None:
    _stop.set()
    if not _initialized.is_set():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def main(args: list[str] | None = None) -> int:
    """Console entry point ``lumde_depth_node`` (``ros2 run lumde_depth lumde_depth_node``, the launch files);
    0 when stopped by SIGINT / SIGTERM, 1 when the node cannot start (the reason on stderr).

    Applies the shipped large-message Fast DDS profile to this process first (:mod:`lumde_depth.ros.dds`:
    unless the user set a profile or another RMW), as it must be set before ``rclpy.init``."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _request_stop)
    from lumde_depth.ros import dds

    try:
        profile = dds.apply_default_profile()
    except (OSError, ValueError) as exc:
        profile = f"Fast DDS default transports (the shipped large-message profile cannot be used: {exc})"
    import rclpy
    from rclpy.exceptions import ParameterException
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from lumde_depth.config import ConfigError
    from lumde_depth.ros.node import DepthNode
    from lumde_depth.ros.params import NODE_NAME

    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    _initialized.set()
    node = executor = None
    try:
        if _stop.is_set():
            return 0
        node = DepthNode()
        node.get_logger().info(profile)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while not _stop.is_set():
            executor.spin_once(timeout_sec=0.1)
    except ExternalShutdownException:   # another part of the process shut rclpy down
        pass
    except (ConfigError, OSError, ValueError, ParameterException) as exc:
        print(f"[{NODE_NAME}] cannot start: {exc}", file=sys.stderr)
        return 1
    finally:
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
