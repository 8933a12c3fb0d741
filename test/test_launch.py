"""Launch files: they compile everywhere; with launch_ros installed they build their descriptions."""
from __future__ import annotations

import importlib.util
import py_compile
from pathlib import Path

import pytest

LAUNCH = Path(__file__).resolve().parents[1] / "launch"
FILES = sorted(LAUNCH.glob("*.launch.py"))


def test_expected_launch_files_exist():
    assert {f.name for f in FILES} == {"depth_completion.launch.py", "kitti_replay.launch.py",
                                       "multi_camera.launch.py"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_launch_file_compiles(path, tmp_path):
    py_compile.compile(str(path), cfile=str(tmp_path / "out.pyc"), doraise=True)


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_launch_description_builds(path):
    pytest.importorskip("launch_ros", reason="launch_ros is not on PyPI: only a ROS 2 install has it")
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument
    description = _load(path).generate_launch_description()
    assert isinstance(description, LaunchDescription)
    names = {a.name for a in description.entities if isinstance(a, DeclareLaunchArgument)}
    assert "model" in names
