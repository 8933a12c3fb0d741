"""Generate synthetic KITTI-like drives: scenes, ego-motion, frames, files.

Deterministic per seed: every sequence's scene and trajectory and every frame's noise come from
their own ``numpy.random.SeedSequence([seed, sequence, ...])``, so the files are byte-identical
whatever the number of worker processes or the order they finish in.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from lumde_depth.config import ConfigError, field
from lumde_depth.data.synth.camera import KITTI_WIDTH, CameraConfig, T_vehicle_imu, rig
from lumde_depth.data.synth.frame import GT_COVERAGES, Frame, Renderer
from lumde_depth.data.synth.lidar import LidarConfig
from lumde_depth.data.synth.rigs import RIGS, random_rig
from lumde_depth.data.synth.scene import Scene, build_scene
from lumde_depth.data.synth.sequence import EgoMotion, frame_times, oxts_packets, sweep_motion
from lumde_depth.data.synth.writers import (SYNTH_DATE, selection_size, write_dc_frame, write_raw_frame,
                                            write_raw_meta, write_selection_frame, written_calibration)
from lumde_depth.geometry.calibration import Calibration

LAYOUTS = ("kitti_dc", "kitti_raw")


@dataclass
class SynthConfig:
    """What ``lumde synth`` generates (yaml keys of ``--config``, or ``--set key=value``)."""

    frames: int = field(20, low=1, high=10_000_000, doc="frames in total, spread evenly over the sequences")
    sequences: int = field(2, low=1, high=9999, doc="drives (scenes); kitti_dc puts the last ones in val")
    val_sequences: int = field(-1, low=-1, high=9999,
                               doc="kitti_dc: drives in val (-1: one in five, at least one when there are two)")
    seed: int = field(0, low=0, doc="random seed; the same seed gives byte-identical files")
    layout: str = field("kitti_dc", choices=LAYOUTS, doc="kitti_dc (depth completion + raw) or kitti_raw")
    workers: int = field(2, low=1, high=256, doc="processes rendering frames")
    camera_scale: float = field(1.0, low=0.05, high=1.0, doc="image size relative to the camera's own "
                                                             "(KITTI's 1242x375 by default)")
    max_width: int = field(0, low=0, high=8192, doc="scale images down further to at most this width (0: no limit)")
    rig: str = field("fixed", choices=RIGS,
                     doc="fixed: the camera / lidar keys as set (default KITTI's); random: a new rig per drive "
                         "(image size, focal length, mounting, LiDAR pattern and range, image formation, scene "
                         "style; see lumde_depth/data/synth/rigs.py)")
    gt_max_depth: float = field(80.0, low=1.0, high=255.0, doc="range of the KITTI-like ground truth (m)")
    gt_coverage: str = field("dense", choices=GT_COVERAGES,
                             doc="dense: ground truth at every pixel up to gt_max_depth; lidar: KITTI-like semi-dense, "
                                 "only inside the LiDAR's vertical field of view and range (none above the top ring)")
    gt_density: float = field(1.0, low=0.0, high=1.0,
                              doc="gt_coverage lidar: share of the covered pixels kept (KITTI's accumulated scans: "
                                  "about 0.3 of the benchmark crop)")
    dense_max_depth: float = field(250.0, low=1.0, high=255.0, doc="range of the dense depth (m)")
    speed_min: float = field(5.0, low=0.0, high=40.0, doc="slowest mean ego speed (m/s)")
    speed_max: float = field(12.0, low=0.0, high=40.0, doc="fastest mean ego speed (m/s)")
    parked_rate: float = field(0.55, low=0.0, high=1.0, doc="share of parking slots with a car")
    moving_cars: int = field(6, low=0, high=50, doc="moving cars per drive (half of them oncoming)")
    building_gap: float = field(0.15, low=0.0, high=0.95, doc="share of the building line left open (long views)")
    pedestrians: float = field(0.0, low=0.0, high=50.0, doc="people standing on each sidewalk per 100 m")
    lidar: LidarConfig = field(default_factory=LidarConfig, doc="LiDAR model (pattern, beams, range, artefacts)")
    camera: CameraConfig = field(default_factory=CameraConfig, doc="camera (size, focal length, mounting, image "
                                                                   "formation)")


def split_frames(frames: int, sequences: int) -> list[int]:
    """Frames per sequence: ``frames`` spread as evenly as possible, earlier sequences first."""
    if frames < sequences:
        raise ConfigError(f"{frames} frames cannot fill {sequences} sequences: ask for at least one frame per "
                         f"sequence (--frames >= --sequences)")
    return [frames // sequences + (k < frames % sequences) for k in range(sequences)]


def val_sequence_count(config: SynthConfig) -> int:
    if config.val_sequences >= 0:
        if config.val_sequences > config.sequences:
            raise ConfigError(f"val_sequences={config.val_sequences} exceeds sequences={config.sequences}")
        return config.val_sequences
    return 0 if config.sequences < 2 else max(1, config.sequences // 5)


@dataclass
class Sensors:
    """A drive's rig: the calibration written to its files, what readers get back, the renderer."""

    rig: Calibration
    calib: Calibration
    renderer: Renderer

    @staticmethod
    def create(config: SynthConfig, camera: CameraConfig, lidar: LidarConfig) -> "Sensors":
        full_width = camera.width or KITTI_WIDTH
        scale = config.camera_scale if not config.max_width else min(config.camera_scale, config.max_width / full_width)
        written = rig(camera, max(scale, 0.05))
        calib = written_calibration(written)
        renderer = Renderer(calib, lidar, config.gt_max_depth, config.dense_max_depth, gt_coverage=config.gt_coverage,
                            gt_density=config.gt_density, camera=camera)
        return Sensors(rig=written, calib=calib, renderer=renderer)


@dataclass
class Drive:
    """One sequence: its scene, trajectory, frame times, sensors and recording day."""

    scene: Scene
    ego: EgoMotion
    times: np.ndarray
    sensors: Sensors
    date: str

    @staticmethod
    def create(config: SynthConfig, sequence: int, frames: int, fixed: Sensors | None = None) -> "Drive":
        """The drive ``sequence``; ``fixed``: the sensors of a fixed rig (else a random rig is drawn from
        its own seed, so the scene and trajectory draws are the same whatever the rig)."""
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, sequence]))
        if fixed is not None:
            camera, lidar, scene_options = config.camera, config.lidar, {}
            sensors, date = fixed, SYNTH_DATE
        else:
            camera, lidar, scene_options = random_rig(np.random.default_rng(
                np.random.SeedSequence([config.seed, sequence, 2])), config.camera, config.lidar)
            sensors = Sensors.create(config, camera, lidar)
            date = (datetime(2000, 1, 1) + timedelta(days=sequence)).strftime("%Y_%m_%d")
        options = {"parked_rate": config.parked_rate, "building_gap": config.building_gap,
                   "pedestrians": config.pedestrians, **scene_options}
        speed = float(rng.uniform(config.speed_min, config.speed_max))
        times = frame_times(rng, frames)
        duration = float(times[-1]) + 0.1
        x_end = (speed + 2.0) * duration + 320.0
        scene = build_scene(rng, -lidar.max_range - 10.0, x_end, duration, speed, options["parked_rate"],
                            config.moving_cars, options["building_gap"], options["pedestrians"])
        return Drive(scene=scene, ego=EgoMotion.random(rng, scene.ego_lane_y, speed, lidar.height), times=times,
                     sensors=sensors, date=date)


class Generator:
    """Renders and writes frames; one per process (scenes and renderer are cached)."""

    def __init__(self, config: SynthConfig, out: Path) -> None:
        self.config, self.out = config, Path(out)
        if config.speed_min > config.speed_max:
            raise ConfigError(f"speed_min={config.speed_min} is above speed_max={config.speed_max}")
        if len(config.camera.exposure) != 2 or config.camera.exposure[0] > config.camera.exposure[1]:
            raise ConfigError(f"camera.exposure must be [low, high] with low <= high, got {config.camera.exposure}")
        try:
            self.fixed = Sensors.create(config, config.camera, config.lidar) if config.rig == "fixed" else None
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.counts = split_frames(config.frames, config.sequences)
        self.n_val = val_sequence_count(config) if config.layout == "kitti_dc" else 0
        self.raw_root = self.out / "raw" if config.layout == "kitti_dc" else self.out
        self._drives: dict[int, Drive] = {}
        self._current = 0

    def drive(self, sequence: int) -> Drive:
        """The sequence's drive; only the last one is kept (frames come sequence by sequence)."""
        if sequence not in self._drives:
            self._drives = {sequence: Drive.create(self.config, sequence, self.counts[sequence], self.fixed)}
        self._current = sequence
        return self._drives[sequence]

    @property
    def sensors(self) -> Sensors:
        """The sensors of the fixed rig, or of the drive rendered last (a random rig)."""
        return self.fixed if self.fixed is not None else self.drive(self._current).sensors

    @property
    def rig(self) -> Calibration:
        return self.sensors.rig

    @property
    def calib(self) -> Calibration:
        return self.sensors.calib

    @property
    def renderer(self) -> Renderer:
        return self.sensors.renderer

    def split(self, sequence: int) -> str:
        return "val" if sequence >= self.config.sequences - self.n_val else "train"

    def render(self, sequence: int, index: int) -> Frame:
        drive = self.drive(sequence)
        time = float(drive.times[index])
        rng = np.random.default_rng(np.random.SeedSequence([self.config.seed, sequence, 1, index]))
        renderer = drive.sensors.renderer
        motion = sweep_motion(drive.ego, time) if renderer.lidar.motion_distortion else None
        return renderer.render(drive.scene, time, drive.ego.pose(time), rng, motion)

    def write(self, sequence: int, index: int) -> tuple[int, float]:
        """Render and write one frame; returns its LiDAR point count and projected density."""
        frame = self.render(sequence, index)
        date = self.drive(sequence).date
        write_raw_frame(self.raw_root, sequence, index, frame, date)
        if self.config.layout == "kitti_dc":
            split = self.split(sequence)
            write_dc_frame(self.out, split, sequence, index, frame, date)
            if split == "val":
                write_selection_frame(self.out, sequence, index, frame, self.drive(sequence).sensors.calib,
                                      selection_size(self.config.camera_scale), date)
        return len(frame.points), float((frame.sparse > 0).mean())

    def write_meta(self) -> None:
        """Calibration, timestamps and OXTS packets of every drive (cheap: done in the parent process)."""
        for sequence in range(self.config.sequences):
            drive = self.drive(sequence)
            start = datetime.strptime(drive.date, "%Y_%m_%d") + timedelta(hours=12, minutes=sequence)
            write_raw_meta(self.raw_root, sequence, drive.sensors.rig, drive.times, start,
                           oxts_packets(drive.ego, drive.times, T_vehicle_imu()), date=drive.date)

    def tasks(self) -> Iterator[tuple[int, int]]:
        for sequence, count in enumerate(self.counts):
            for index in range(count):
                yield sequence, index


def render_frames(frames: int, seed: int, **options: object) -> Iterator[tuple[Frame, np.ndarray]]:
    """``frames`` frames rendered in memory (nothing is written), each with its camera's 3x3 ``K``:
    ``max(1, frames // 6)`` drives of seed ``seed``; ``options`` are further :class:`SynthConfig` fields."""
    gen = Generator(SynthConfig(frames=frames, sequences=max(1, frames // 6), seed=seed, **options), Path("unused"))
    for sequence, index in gen.tasks():
        yield gen.render(sequence, index), gen.calib.K


_WORKER: Generator | None = None


def _init_worker(config: SynthConfig, out: Path) -> None:
    global _WORKER
    _WORKER = Generator(config, out)


def _work(task: tuple[int, int]) -> tuple[int, float]:
    assert _WORKER is not None
    return _WORKER.write(*task)


def generate(config: SynthConfig, out: str | Path, progress: bool = True) -> dict[str, float]:
    """Write ``config.frames`` frames under ``out``; returns summary figures (frames, mean points,
    mean projected density, frames in ``depth_selection/val_selection_cropped``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gen = Generator(config, out)
    gen.write_meta()
    tasks = list(gen.tasks())
    results = []
    if config.workers == 1 or len(tasks) == 1:
        with tqdm(total=len(tasks), desc="lumde synth", unit="frame", disable=not progress) as bar:
            for task in tasks:
                results.append(gen.write(*task))
                bar.update()
    else:
        # fork: workers start at once with the parent's imports (spawn re-imports torch via lumde_depth.data);
        # the workers are forked (at the first submission) before the progress bar starts its thread
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(config.workers, mp_context=multiprocessing.get_context(method),
                                 initializer=_init_worker, initargs=(config, out)) as pool:
            done = pool.map(_work, tasks, chunksize=max(1, len(tasks) // (config.workers * 8)))
            with tqdm(total=len(tasks), desc="lumde synth", unit="frame", disable=not progress) as bar:
                for result in done:
                    results.append(result)
                    bar.update()
    points, density = np.array(results, dtype=np.float64).T
    selection = sum(count for sequence, count in enumerate(gen.counts) if config.layout == "kitti_dc"
                    and gen.split(sequence) == "val")
    return {"frames": float(len(tasks)), "points": float(points.mean()), "density": float(density.mean()),
            "selection_frames": float(selection)}
