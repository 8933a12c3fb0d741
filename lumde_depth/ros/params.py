"""The node's parameters: one typed, documented, range-checked table.

:class:`NodeParams` is a strict config dataclass (:mod:`lumde_depth.config`), so ``config/*.yaml``
can be validated without ROS (``from_dict(NodeParams, yaml[node]["ros__parameters"])``), and
:func:`declare` turns every field into a ROS parameter whose ``ParameterDescriptor`` carries the
field's doc, its ``FloatingPointRange`` / ``IntegerRange`` and its choices.
"""
from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass
from typing import Any

from lumde_depth.config import ConfigError, closest_key, field, from_dict
from lumde_depth.inference.backends import BACKENDS

NODE_NAME = "lumde_depth_node"
CAMERA_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")   # a camera's name: one ROS name token


@dataclass
class NodeParams:
    model: str = field("", doc="model file (.pt from lumde train/distill, or exported .onnx); "
                               "empty = the shipped student lumde_depth/weights/student.pt")
    backend: str = field("auto", choices=BACKENDS,
                         doc="inference backend; auto = torch on CUDA, else onnxruntime, else torch CPU; "
                             "classical = IP-Basic morphological completion, nearest = nearest fill (no model)")
    device: str = field("auto", doc="auto, cpu, cuda or cuda:N (torch backend)")
    input_height: int = field(0, low=0, high=4096, doc="completion network input height; 0 = the model's own")
    input_width: int = field(0, low=0, high=8192, doc="completion network input width; 0 = the model's own")
    fit: str = field("aspect", choices=("aspect", "stretch", "crop"),
                     doc="image -> network input: the whole image at its own aspect ratio (the model's pixel "
                         "count), stretched to the model's input size, or a crop of the network's aspect "
                         "ratio at the bottom centre (pixels outside get no depth)")
    threads: int = field(0, low=0, high=256, doc="CPU threads for inference; 0 = automatic: the network on one per "
                                                  "core, the full-resolution refinement on half the cores (at least 1: "
                                                  "the executor, DDS and the cloud thread share them); with several "
                                                  "cameras also the budget of the per-camera threads")
    lidar_align: bool = field(True, doc="rescale the network's depth to meet the LiDAR points at the image's "
                                        "resolution (pulled to the points where dense, smooth between), then pull "
                                        "each pixel to the points on its own surface within 3 px (completion models)")
    mode: str = field("completion", choices=("completion", "monocular", "auto"),
                      doc="completion (camera + LiDAR), monocular (camera only), auto (completion, "
                          "monocular while the LiDAR is silent longer than lidar_timeout)")
    cameras: list[str] = field(default_factory=list,
                               doc="several cameras around one LiDAR in one node: their names, each the namespace of "
                                   "its topics (<camera>/image, <camera>/camera_info in; <camera>/depth/... out; "
                                   "one points), its LiDAR extrinsic from TF or <camera>.T_cam_lidar; the cloud is "
                                   "converted once per sweep and the images go through the network in one batch "
                                   "(mode completion). Empty = one camera on image, camera_info")
    sweep_wait: float = field(0.5, low=0.01, high=60.0,
                              doc="several cameras: seconds a LiDAR sweep waits (while the worker is idle) for every "
                                  "camera's set before it goes on with the cameras it has; a newer sweep sends it on "
                                  "at once")
    mono_model: str = field("", doc="monocular student model file for mode monocular/auto; 'shipped' = the "
                                    "shipped one (trained on synthetic drives only, see docs/model_card.md); "
                                    "empty = none (mode auto then publishes only diagnostics while the LiDAR "
                                    "is silent)")
    lidar_timeout: float = field(1.0, low=0.05, high=3600.0,
                                 doc="seconds without a LiDAR cloud before mode auto goes camera-only")
    T_cam_lidar: list[float] = field(default_factory=list,
                                     doc="LiDAR -> camera optical frame, 16 floats row-major (4x4) or 7 "
                                         "(x y z qx qy qz qw); used when TF has no transform")
    calib_file: str = field("", doc="KITTI calibration: object calib .txt (P2, R0_rect, Tr_velo_to_cam) or a "
                                    "raw date folder / calib_velo_to_cam.txt; alternative to T_cam_lidar")
    calib_camera: int = field(2, low=0, high=3, doc="KITTI camera index of calib_file (2 = left colour)")
    lidar_frame: str = field("", doc="frame_id of the clouds that T_cam_lidar / calib_file map from; a cloud in "
                                     "another frame is refused (wrong_cloud_frame). Empty = the first cloud's "
                                     "frame_id, logged once. Not used for transforms found in TF (looked up "
                                     "from each cloud's own frame_id)")
    use_tf: bool = field(True, doc="look the extrinsic up in TF first (needs tf2_ros)")
    tf_timeout: float = field(0.1, low=0.0, high=10.0, doc="seconds to wait for TF on a lookup")
    slop: float = field(0.05, low=0.0001, high=10.0, doc="approximate sync: max stamp spread in seconds")
    queue_size: int = field(10, low=1, high=1000, doc="sync queue length per input")
    exact_sync: bool = field(False, doc="require identical stamps (TimeSynchronizer) instead of approximate")
    image_compressed: bool = field(False, doc="subscribe to sensor_msgs/CompressedImage on 'image'")
    qos_reliability: str = field("best_available", choices=("best_available", "reliable", "best_effort"),
                                 doc="input reliability; best_available matches reliable and best-effort "
                                     "publishers (best_effort where the distro lacks it)")
    qos_depth: int = field(5, low=1, high=1000, doc="input and output history depth")
    output_reliability: str = field("reliable", choices=("reliable", "best_effort"),
                                    doc="reliability of the published topics")
    decimation: int = field(1, low=1, high=32, doc="depth/points keeps every n-th pixel in both directions")
    min_depth: float = field(0.1, low=0.0001, high=1000.0, doc="metres; nearer LiDAR points and depths dropped")
    max_depth: float = field(300.0, low=0.01, high=10000.0,
                             doc="metres; farther LiDAR points and depths dropped (long-range LiDARs reach 250 m)")
    min_confidence: float = field(0.0, low=0.0, high=1.0,
                                  doc="pixels whose confidence (depth/confidence) is below it get no depth in "
                                      "depth/image (NaN) and no point in depth/points; 0 = keep all")
    publish_unsupported: bool = field(False, doc="publish depth the LiDAR does not support too (outside its field "
                                                 "of view, farther than support_gap from any point, saturated at "
                                                 "the model's clip); false = NaN there (REP 118)")
    support_gap: float = field(1.0, low=0.0, high=100.0,
                               doc="metres (at the pixel's depth) a pixel may lie from its nearest LiDAR point and "
                                   "still be supported, beyond two ring spacings; 0 = no distance test")
    rectify: bool = field(False, doc="raw images (camera_info D != 0): false = depth registered to the image as "
                                     "published (LiDAR projected and the cloud back-projected through K and D); "
                                     "true = rectify the image first and publish on the grid of P "
                                     "(depth/camera_info then has D = 0, K = P's)")
    publish_sparse: bool = field(False, doc="publish depth/sparse (the projected LiDAR, 32FC1)")
    publish_colored: bool = field(True, doc="publish depth/colored (rgb8 colour map)")
    color_near: float = field(1.0, low=0.01, high=1000.0, doc="depth/colored: metres shown red")
    color_far: float = field(80.0, low=0.02, high=10000.0, doc="depth/colored: metres shown dark blue")
    max_stamp_age: float = field(0.0, low=0.0, high=3600.0,
                                 doc="drop sets whose image stamp is older than this (s); 0 = never")
    diagnostics_period: float = field(1.0, low=0.05, high=60.0, doc="seconds between /diagnostics messages")
    log_throttle: float = field(5.0, low=0.0, high=3600.0, doc="seconds between repeated warnings of one kind")


# take effect while the node runs (``ros2 param set``); every other parameter is read at start-up
LIVE = frozenset({"slop", "decimation", "min_depth", "max_depth", "min_confidence", "publish_unsupported",
                  "support_gap", "publish_sparse", "publish_colored", "color_near", "color_far", "max_stamp_age",
                  "diagnostics_period", "log_throttle", "lidar_timeout", "tf_timeout", "rectify"})
_FIXED_BECAUSE = {
    **dict.fromkeys(("model", "backend", "device", "input_height", "input_width", "fit", "threads", "lidar_align",
                     "mode", "mono_model"), "the networks are loaded at start-up"),
    **dict.fromkeys(("cameras", "image_compressed", "qos_reliability", "qos_depth", "output_reliability"),
                    "the topics are subscribed and advertised at start-up"),
    **dict.fromkeys(("queue_size", "exact_sync"), "the synchronizer is built at start-up"),
    **dict.fromkeys(("T_cam_lidar", "calib_file", "calib_camera", "use_tf", "lidar_frame"),
                    "the extrinsic source is chosen at start-up"),
}


def fixed_because(name: str) -> str:
    """Why parameter ``name`` cannot change while the node runs."""
    return _FIXED_BECAUSE.get(name, "it is read at start-up")


def change(current: NodeParams, updates: dict[str, Any]) -> NodeParams:
    """``current`` with ``updates`` (parameter name -> new value) applied and checked as at start-up.

    Raises :class:`~lumde_depth.config.ConfigError` with the reason: a parameter fixed at start-up (and
    how to set it), a value out of range, a pair out of order, a change with no effect."""
    for name, value in updates.items():
        if name not in LIVE:
            raise ConfigError(f"{name} cannot change while the node runs ({fixed_because(name)}): restart the "
                              f"node with {name}:={value}")
    params = from_dict(NodeParams, {**dataclasses.asdict(current), **updates})
    validate(params)
    if "slop" in updates and params.exact_sync:
        raise ConfigError("slop has no effect with exact_sync:=true (identical stamps only): restart the node with "
                          "exact_sync:=false to synchronize within a slop")
    return params


def unknown_overrides(node: Any) -> list[str]:
    """A warning for each parameter given to ``node`` (params file, ``-p``) that it does not have, naming the
    closest valid one. Call once everything is declared. rclpy keeps the overrides it was started with in
    ``Node._parameter_overrides`` (Humble to Rolling; there is no public accessor)."""
    valid = [f.name for f in dataclasses.fields(NodeParams)]
    warnings = []
    for name in sorted(getattr(node, "_parameter_overrides", {})):
        if node.has_parameter(name):
            continue
        guess = closest_key(name, valid)
        hint = f": did you mean '{guess}'?" if guess else f" (its parameters: {', '.join(valid)})"
        warnings.append(f"unknown parameter '{name}' (from a params file or -p) is ignored{hint}")
    return warnings


def _ros_type(tp: Any) -> int:
    """The ROS ParameterType of a field type."""
    from rcl_interfaces.msg import ParameterType
    types = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
             float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
    if tp in types:
        return types[tp]
    if typing.get_origin(tp) is list:
        return ParameterType.PARAMETER_STRING_ARRAY if typing.get_args(tp) == (str,) else \
            ParameterType.PARAMETER_DOUBLE_ARRAY
    raise TypeError(f"no ROS parameter type for {tp}")


def declare(node: Any) -> NodeParams:
    """Declare every :class:`NodeParams` field on ``node`` and return the validated values.

    Raises :class:`~lumde_depth.config.ConfigError` naming the parameter when a value is out of range.
    """
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    from rclpy.parameter import Parameter

    hints = typing.get_type_hints(NodeParams)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(NodeParams):
        tp, meta = hints[f.name], f.metadata
        ptype = _ros_type(tp)
        when = "changes while the node runs" if f.name in LIVE else \
            f"fixed at start-up: {fixed_because(f.name)} (a change is refused with that reason)"
        # not read_only: rclpy would refuse a change to a read-only parameter without saying why
        descriptor = ParameterDescriptor(name=f.name, type=ptype, description=f"{meta.get('doc', '')} [{when}]")
        if meta.get("choices"):
            descriptor.additional_constraints = "one of: " + ", ".join(map(str, meta["choices"]))
        low, high = meta.get("low"), meta.get("high")
        if low is not None and high is not None:
            if tp is float:
                descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high))]
            elif tp is int:
                descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        if default == []:
            param = node.declare_parameter(f.name, Parameter.Type(ptype), descriptor)
            value = param.value if param.type_ != Parameter.Type.NOT_SET else []
        else:
            value = node.declare_parameter(f.name, default, descriptor).value
        values[f.name] = list(value) if typing.get_origin(tp) is list else value
    params = from_dict(NodeParams, values)
    validate(params)
    return params


def declare_camera_extrinsics(node: Any, cameras: list[str]) -> dict[str, Any]:
    """Declare ``<camera>.T_cam_lidar`` (16 or 7 floats, as ``T_cam_lidar``) for each of a rig's ``cameras``
    and return the 4x4 matrices of those given (the others come from TF, or the node's ``T_cam_lidar``).

    Raises :class:`~lumde_depth.config.ConfigError` naming the parameter when a value is malformed."""
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.parameter import Parameter

    from lumde_depth.ros.extrinsics import matrix_from_param

    matrices = {}
    for camera in cameras:
        name = f"{camera}.T_cam_lidar"
        param = node.declare_parameter(name, Parameter.Type.DOUBLE_ARRAY, ParameterDescriptor(
            name=name, description=f"LiDAR -> optical frame of camera {camera}, 16 floats row-major (4x4) or 7 (x y z "
                                   "qx qy qz qw); used when TF has no transform [fixed at start-up]"))
        if param.type_ == Parameter.Type.NOT_SET or not len(param.value):
            continue
        try:
            matrices[camera] = matrix_from_param(param.value)
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    return matrices


def validate(params: NodeParams) -> None:
    """Checks across parameters (single values are range-checked by the config layer)."""
    if params.min_depth >= params.max_depth:
        raise ConfigError(f"min_depth ({params.min_depth}) must be below max_depth ({params.max_depth})")
    if params.color_near >= params.color_far:
        raise ConfigError(f"color_near ({params.color_near}) must be below color_far ({params.color_far})")
    if params.T_cam_lidar and len(params.T_cam_lidar) not in (7, 16):
        raise ConfigError(f"T_cam_lidar has {len(params.T_cam_lidar)} values: give 16 (4x4 row-major) or 7 "
                          "(x y z qx qy qz qw)")
    bad = [name for name in params.cameras if not CAMERA_NAME.fullmatch(name)]
    if bad or len(set(params.cameras)) != len(params.cameras):
        invalid = f"; not valid: {bad}" if bad else ""
        raise ConfigError(f"cameras {params.cameras}: give distinct names of letters, digits and _ (each one the "
                          f"namespace of its camera's topics, e.g. [front, left]){invalid}")
    if len(params.cameras) > 1 and params.mode != "completion":
        raise ConfigError(f"several cameras run in mode completion only (mode is {params.mode!r}): set "
                          "mode:=completion, or run one node per camera for mode monocular / auto")
    if (params.input_height == 0) != (params.input_width == 0):
        raise ConfigError("set both input_height and input_width, or neither (0 = the model's input size)")
