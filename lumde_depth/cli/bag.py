"""``lumde bag play IN`` (publish a bag with rclpy) and ``lumde bag process IN OUT`` (run the pipeline over a bag)."""
from __future__ import annotations

import argparse
import sys


def _play(args: argparse.Namespace) -> int:
    try:
        import rclpy
    except ImportError as exc:
        print(f"lumde bag play: rclpy is not importable ({exc}); pip install -r requirements-ros.txt", file=sys.stderr)
        return 2
    from lumde_depth.ros import dds
    from lumde_depth.ros.bag_io import BagError
    from lumde_depth.ros.bag_play import play

    print(f"lumde bag play: {dds.apply_default_profile()}", file=sys.stderr)   # large images and clouds
    rclpy.init()
    try:
        summary = play(args.bag, rate=args.rate, loop=args.loop, clock_hz=args.clock or 0.0, topics=args.topics,
                       wait_for_subscribers=args.wait_for_subscribers, stop=lambda: not rclpy.ok())
    except BagError as exc:
        print(f"lumde bag play: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        rclpy.try_shutdown()
    print(f"published {sum(summary.published.values())} messages on {len(summary.published)} topics"
          + (f" ({summary.loops} loops)" if args.loop else ""))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bag", help="play a bag with rclpy, or run the depth pipeline over a bag")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    play_parser = verbs.add_parser(
        "play", help="publish a ROS 2 bag at its recorded rate (where `ros2 bag play` is absent)",
        description="Publish a ROS 2 bag's messages with rclpy at the recorded rate, with the bag's QoS "
                    "(/tf_static transient-local) and optionally /clock.")
    play_parser.add_argument("bag", help="bag folder (holding metadata.yaml)")
    play_parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1.0)")
    play_parser.add_argument("--loop", action="store_true", help="play again and again until Ctrl-C")
    play_parser.add_argument("--clock", type=float, nargs="?", const=40.0, default=None, metavar="HZ",
                             help="publish the bag time on /clock (default 40 Hz when given without a value)")
    play_parser.add_argument("--topics", nargs="+", help="play only these topics")
    play_parser.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="SECONDS",
                             help="wait up to this long until every topic has a subscriber before starting")
    play_parser.set_defaults(func=_play)
    _register_process(verbs)


def _process(args: argparse.Namespace) -> int:
    from lumde_depth.inference import DepthCompleter
    from lumde_depth.ros.bag_io import BagError
    from lumde_depth.ros.bag_process import process_bag
    from lumde_depth.ros.extrinsics import matrix_from_calib_file, matrix_from_param
    from lumde_depth.ros.params import NodeParams
    from lumde_depth.ros.pipeline import DepthPipeline

    defaults = NodeParams()
    try:
        T = None
        if args.T_cam_lidar:
            T = matrix_from_param(args.T_cam_lidar)
        elif args.calib:
            T = matrix_from_calib_file(args.calib, args.calib_camera)
        completer = DepthCompleter.load(args.model, backend=args.backend, device=args.device,
                                        input_size=tuple(args.input_size) if args.input_size else None,
                                        lidar_align=args.lidar_align)
        pipeline = DepthPipeline(completer, decimation=args.decimation, min_depth=defaults.min_depth,
                                 max_depth=defaults.max_depth, colored=not args.no_colored,
                                 color_range=(defaults.color_near, defaults.color_far),
                                 publish_unsupported=args.publish_unsupported, support_gap=args.support_gap,
                                 min_confidence=args.min_confidence, rectify=args.rectify)
        summary = process_bag(args.bag, args.out, pipeline, image_topic=args.image, info_topic=args.camera_info,
                              points_topic=args.points, T_cam_lidar=T, lidar_frame=args.lidar_frame, slop=args.slop,
                              queue_size=args.queue_size,
                              exact_sync=args.exact_sync, namespace=args.namespace, gt_dir=args.gt,
                              storage=args.storage, progress=not args.no_progress)
    except (BagError, FileNotFoundError, ValueError) as exc:
        print(f"lumde bag process: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {summary.out}: {summary.written} depth frames from {summary.sets} synchronized sets "
          f"(inputs {summary.inputs}); backend {completer.backend_name} on {completer.device}")
    if summary.errors:
        print(f"skipped frames by reason: {summary.errors}")
    if summary.evaluated:
        m = summary.metrics
        print(f"KITTI metrics over {summary.evaluated} images with ground truth: RMSE {m['rmse']:.1f} mm, "
              f"MAE {m['mae']:.1f} mm, iRMSE {m['irmse']:.2f} 1/km, iMAE {m['imae']:.2f} 1/km")
    return 0 if summary.written else 1


def _register_process(verbs: argparse._SubParsersAction) -> None:
    from lumde_depth.ros.params import NodeParams

    parser = verbs.add_parser(
        "process", help="run the depth pipeline over a bag (no DDS) and write a bag with the depth topics",
        description="Copy a ROS 2 bag and add depth/image, depth/camera_info, depth/points, depth/confidence "
                    "(and depth/colored) "
                    "computed by the node's pipeline from the synchronized image, camera_info and cloud.")
    parser.add_argument("bag", help="input bag folder")
    parser.add_argument("out", help="output bag folder to create (must not exist)")
    parser.add_argument("--model", default=None, help="model file (.pt or .onnx); default: the shipped student")
    parser.add_argument("--backend", default="auto",
                        help="auto, torch, onnxruntime, classical (IP-Basic) or nearest (nearest fill; no model)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), help="network input size override")
    parser.add_argument("--no-lidar-align", dest="lidar_align", action="store_false",
                        help="do not rescale the network's depth to meet the LiDAR points (node: lidar_align)")
    parser.add_argument("--gt", default=None, metavar="DIR",
                        help="KITTI ground-truth depth PNGs named by frame index: print KITTI metrics")
    parser.add_argument("--image", help="image topic (default: kitti2bag's, else the only Image topic)")
    parser.add_argument("--camera-info", help="camera_info topic (default: next to the image topic)")
    parser.add_argument("--points", help="PointCloud2 topic (default: kitti2bag's, else the only one)")
    parser.add_argument("--T-cam-lidar", dest="T_cam_lidar", type=float, nargs="+", metavar="V",
                        help="LiDAR -> camera optical frame: 16 floats row-major or x y z qx qy qz qw "
                             "(default: the bag's /tf_static)")
    parser.add_argument("--calib", help="KITTI calibration (file or raw date folder) instead of /tf_static")
    parser.add_argument("--calib-camera", type=int, default=2, help="KITTI camera of --calib (default 2)")
    parser.add_argument("--lidar-frame", default="", metavar="FRAME",
                        help="frame_id of the clouds --T-cam-lidar / --calib maps from; clouds in another frame are "
                             "skipped as wrong_cloud_frame (node: lidar_frame; default: the first cloud's frame)")
    parser.add_argument("--slop", type=float, default=None, help="approximate sync slop in s (node default)")
    parser.add_argument("--queue-size", type=int, default=None, help="sync queue size (node default)")
    parser.add_argument("--exact-sync", action="store_true", help="require identical stamps")
    parser.add_argument("--namespace", default="", help="namespace of the output topics (default: /depth/...)")
    parser.add_argument("--decimation", type=int, default=1, help="depth/points keeps every n-th pixel")
    parser.add_argument("--no-colored", action="store_true", help="do not write depth/colored")
    parser.add_argument("--publish-unsupported", action="store_true",
                        help="write depth the LiDAR does not support too (node: publish_unsupported; default NaN)")
    parser.add_argument("--support-gap", type=float, default=NodeParams().support_gap, metavar="M",
                        help="metres a pixel may lie from its nearest LiDAR point (node: support_gap)")
    parser.add_argument("--min-confidence", type=float, default=NodeParams().min_confidence, metavar="C",
                        help="pixels whose confidence is below C (0-1) get no depth (NaN) and no point "
                             "(node: min_confidence; default 0 = keep all)")
    parser.add_argument("--rectify", action="store_true",
                        help="raw images (camera_info D != 0): rectify first and write depth on the grid of P "
                             "(node: rectify; default: depth registered to the raw image through the distortion)")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_process)
