"""Replay a ROS 2 bag with rclpy (for machines without ``ros2 bag``): recorded timing, ``/clock``, bag QoS.

The bag is read with ``rosbags``; its CDR bytes go to DDS unchanged (``Publisher.publish(bytes)``
publishes a serialized message), so nothing is deserialized on the way and every field is exact.
Each topic is offered with the QoS the bag recorded (``offered_qos_profiles``), so ``/tf_static``
replays transient-local and late subscribers still get it. Topics whose message type is not
importable here (e.g. ``tf2_msgs`` without a ROS install) are skipped with a warning.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from lumde_depth.ros import convert
from lumde_depth.ros.bag_io import BagError, open_bag

DEFAULT_DEPTH = 10
ACK_TIMEOUT = 5.0   # seconds play() waits, after the last message, for reliable subscribers to acknowledge it


@dataclass
class PlaySummary:
    """Messages published per topic, topics skipped (with why), loops done."""

    published: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    loops: int = 0


def qos_from_bag(profiles: Sequence[Any], topic: str) -> Any:
    """rclpy ``QoSProfile`` from a connection's offered profiles (as ``ros2 bag play`` adapts them).

    Reliable only when every recorded publisher was reliable; transient-local only when every one was;
    bags without profiles give depth 10, reliable, volatile (``/tf_static``: depth 1, transient-local).
    """
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    if not profiles:
        latched = topic == "/tf_static"
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1 if latched else DEFAULT_DEPTH,
                          reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
    reliable = all(p.reliability.name == "RELIABLE" for p in profiles)
    latched = all(p.durability.name == "TRANSIENT_LOCAL" for p in profiles)
    depths = [p.depth for p in profiles if p.history.name == "KEEP_LAST" and p.depth > 0]
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=max(depths) if depths else DEFAULT_DEPTH,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


def _wait_until(target: float, on_tick: Callable[[float], None] | None, tick: float, stop: Callable[[], bool]) -> None:
    """Sleep until ``time.monotonic() >= target``, calling ``on_tick(now)`` every ``tick`` seconds."""
    while not stop():
        now = time.monotonic()
        if on_tick is not None:
            on_tick(now)
        if now >= target:
            return
        time.sleep(min(target - now, tick))


def play(bag: str | Path, context: Any = None, rate: float = 1.0, loop: bool = False, clock_hz: float = 0.0,
         topics: Sequence[str] | None = None, wait_for_subscribers: float = 0.0,
         stop: Callable[[], bool] = lambda: False, log: Callable[[str], None] | None = None) -> PlaySummary:
    """Publish the messages of ``bag`` on DDS at ``rate`` times the recorded speed.

    ``context``: rclpy Context (None = the default one, which must be initialized). ``clock_hz`` > 0
    also publishes the bag time on ``/clock`` at that rate (and before each message).
    ``wait_for_subscribers`` seconds at most are spent waiting until every topic has a subscriber.
    ``stop()`` is polled to end early (``loop`` plays until it returns True).
    """
    import rclpy
    from rclpy.duration import Duration
    from rclpy.qos import QoSProfile
    from rosgraph_msgs.msg import Clock

    if rate <= 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    log = log or (lambda text: print(text, file=sys.stderr))
    summary = PlaySummary()
    node = rclpy.create_node("lumde_bag_player", context=context)
    try:
        with open_bag(bag) as reader:
            publishers: dict[str, Any] = {}
            selected = []
            for conn in reader.connections:
                if topics is not None and conn.topic not in topics:
                    continue
                if conn.topic not in publishers and conn.topic not in summary.skipped:
                    try:
                        msg_type = convert.message_class(conn.msgtype)
                    except ImportError as exc:
                        summary.skipped[conn.topic] = str(exc)
                        log(f"lumde bag play: skipping {conn.topic}: {exc}")
                        continue
                    profiles = [c.ext.offered_qos_profiles for c in reader.connections if c.topic == conn.topic]
                    publishers[conn.topic] = node.create_publisher(
                        msg_type, conn.topic, qos_from_bag([p for ps in profiles for p in ps], conn.topic))
                if conn.topic in publishers:
                    selected.append(conn)
            if not selected:
                raise BagError(f"{bag}: nothing to play (topics in the bag: "
                               f"{sorted({c.topic for c in reader.connections})}, asked for {topics})")
            clock_pub = node.create_publisher(Clock, "/clock", QoSProfile(depth=DEFAULT_DEPTH)) if clock_hz > 0 else None
            deadline = time.monotonic() + wait_for_subscribers
            while time.monotonic() < deadline and not stop() and \
                    any(p.get_subscription_count() == 0 for p in publishers.values()):
                time.sleep(0.01)
            while not stop():
                _play_once(reader, selected, publishers, clock_pub, rate, clock_hz, stop, summary)
                summary.loops += 1
                if not loop:
                    break
            # reliable publishers still resend the last (large) messages: destroying them now would lose those
            for publisher in publishers.values():
                publisher.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT))
    finally:
        node.destroy_node()
    return summary


def _play_once(reader: Any, connections: list[Any], publishers: dict[str, Any], clock_pub: Any, rate: float,
               clock_hz: float, stop: Callable[[], bool], summary: PlaySummary) -> None:
    from rosgraph_msgs.msg import Clock

    t0 = wall0 = None
    next_clock = [0.0]
    pending = [0]  # stamp of the message being waited for: /clock never runs past it

    def publish_clock(bag_ns: int) -> None:
        clock_pub.publish(Clock(clock=convert.make_stamp(bag_ns)))

    def on_tick(now: float) -> None:
        if now >= next_clock[0]:
            publish_clock(min(t0 + int((now - wall0) * rate * 1e9), pending[0]))
            next_clock[0] = now + 1.0 / clock_hz

    tick = 1.0 / clock_hz if clock_pub is not None else 0.05
    for conn, stamp, raw in reader.messages(connections=connections):
        if t0 is None:
            t0, wall0 = stamp, time.monotonic()
        pending[0] = stamp
        _wait_until(wall0 + (stamp - t0) / 1e9 / rate, on_tick if clock_pub is not None else None, tick, stop)
        if stop():
            return
        if clock_pub is not None:
            publish_clock(stamp)
        publishers[conn.topic].publish(bytes(raw))
        summary.published[conn.topic] = summary.published.get(conn.topic, 0) + 1
