"""``lumde adapt RECORDING --out DIR [--set KEY=VALUE ...]``: fine-tune a completion model on your own recording.

Self-supervised, no ground truth: part of the recording's own LiDAR points are held out of the input
and are the targets (:mod:`lumde_depth.engine.adapt`); with ``--photometric W`` also the photometric
consistency of consecutive frames whose camera poses the recording gives (KITTI raw oxts, DDAD, bag /tf).
RECORDING is a ROS 2 bag folder or a ROS 1 ``.bag`` file (read with rosbags; topics as for ``lumde bag process``), a KITTI raw drive folder, DDAD /
DGP scenes, or a folder of ``images/``, ``scans/`` and ``calib.yaml``. The last frames (``holdout``), or the recording
given with ``--eval``, are never trained on and score the model before and after. Writes
``DIR/model.pt`` (the node loads it with ``model:=DIR/model.pt``), ``DIR/report.md`` / ``report.json``,
``DIR/train.csv``, and checkpoints for ``--resume``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lumde_depth.data.recording import FOLDER_LAYOUT


def _recording(path: Path, args: argparse.Namespace):
    """The recording at ``path``; bags are read in the ROS layer (rosbags), everything else in data/."""
    if (path / "metadata.yaml").is_file() or path.suffix == ".bag":
        from lumde_depth.ros.bag_frames import bag_recording
        from lumde_depth.ros.extrinsics import matrix_from_param
        T = matrix_from_param(args.T_cam_lidar) if args.T_cam_lidar else None
        return bag_recording(path, image_topic=args.image, info_topic=args.camera_info, points_topic=args.points,
                             T_cam_lidar=T, lidar_frame=args.lidar_frame, max_frames=args.max_frames)
    from lumde_depth.data.recording import open_recording
    return open_recording(path, camera=args.camera, cameras=args.cameras)


def _adapt(args: argparse.Namespace) -> int:
    from lumde_depth.config import load
    from lumde_depth.data.depth_io import DataError
    from lumde_depth.engine.adapt import AdaptConfig, adapt
    from lumde_depth.engine.checkpoint import CheckpointError
    from lumde_depth.models.io import ModelFileError
    from lumde_depth.ros.bag_io import BagError

    cfg = load(AdaptConfig, args.config, [*args.overrides, *(["progress=false"] if args.no_progress else []),
                                          *([f"photometric={args.photometric}"] if args.photometric is not None
                                            else [])])
    try:
        recording = _recording(args.recording, args)
        evaluation = _recording(args.eval, args) if args.eval else None
        result = adapt(recording, args.out, model=args.model, eval_recording=evaluation, config=cfg,
                       resume=args.resume)
    except (DataError, BagError, ModelFileError, CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"lumde adapt: {exc}", file=sys.stderr)
        return 1
    report = result.report
    if report["rmse_reduction"] is None:
        print(f"adapted {report['steps']} steps on {report['train_frames']} frames (not scored); model file "
              f"{result.model_path}")
        return 0
    before, after = report["before"]["before"]["rmse"], report["after"]["after"]["rmse"]
    print(f"adapted {report['steps']} steps on {report['train_frames']} frames; held-out RMSE {before:.1f} -> "
          f"{after:.1f} mm ({-report['rmse_reduction'] * 100:+.1f} %); model file {result.model_path}; "
          f"report {result.run_dir / 'report.md'}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "adapt", help="fine-tune a completion model on your own unlabelled recording (self-supervised)",
        description=__doc__ + "\nFolder layout:\n" + FOLDER_LAYOUT,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recording", type=Path,
                        help="bag folder / .bag file, KITTI raw drive, DDAD scene(s), or recording folder")
    parser.add_argument("--out", type=Path, required=True, help="run folder (model.pt, report.md, checkpoints)")
    parser.add_argument("--model", default=None, help="completion model file to start from (default: the shipped "
                                                       "student)")
    parser.add_argument("--eval", type=Path, default=None,
                        help="a second recording of the same rig to score on (then all of RECORDING is trained on)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    parser.add_argument("--config", default=None, help="yaml file of adapt options (the --set keys)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="an option (repeatable): steps, batch_size, lr, crop, input_size, max_depth, synthetic_ratio, "
                             "synthetic_frames, holdout, loss, photometric, seed, eval_draws, checkpoint_every, device, "
                             "threads, ...")
    parser.add_argument("--photometric", type=float, default=None, metavar="WEIGHT",
                        help="add the photometric term between consecutive frames with this weight (the photometric "
                             "key; needs camera poses: KITTI raw drives with oxts/, DDAD scenes, bags with /tf; default 0 = off)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (plain lines only)")
    bag = parser.add_argument_group("bags")
    bag.add_argument("--image", default=None, help="image topic (default: kitti2bag's, else the only image topic)")
    bag.add_argument("--camera-info", default=None, help="camera_info topic (default: next to the image topic)")
    bag.add_argument("--points", default=None, help="PointCloud2 topic (default: kitti2bag's, else the only one)")
    bag.add_argument("--T-cam-lidar", nargs="+", type=float, default=None, metavar="V",
                     help="LiDAR -> camera optical frame, 16 floats row-major or x y z qx qy qz qw "
                          "(default: the bag's /tf_static)")
    bag.add_argument("--lidar-frame", default="", metavar="FRAME",
                     help="frame_id of the clouds --T-cam-lidar maps from; clouds in another frame are skipped "
                          "(default: the first cloud's frame)")
    bag.add_argument("--max-frames", type=int, default=300, help="thin a longer bag to about this many frames")
    parser.add_argument("--camera", default="image_02", help="KITTI raw camera folder (image_02 or image_03)")
    parser.add_argument("--cameras", nargs="+", default=None, help="DDAD / DGP: only these cameras (e.g. CAMERA_01)")
    parser.set_defaults(func=_adapt)
