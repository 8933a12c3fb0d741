"""The package builds with colcon (ament_python) and installs where ``ros2 run`` / ``ros2 launch`` look."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "lumde_depth"
COPY_IGNORE = shutil.ignore_patterns(".venv", ".git", "test", "__pycache__", "*.egg-info", "build", "install", "log",
                                     "docs", "bench", ".pytest_cache")


def _colcon() -> str:
    beside_python = Path(sys.executable).with_name("colcon")
    found = str(beside_python) if beside_python.exists() else shutil.which("colcon")
    if not found:
        pytest.skip("colcon not installed (pip install colcon-common-extensions)")
    return found


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory) -> Path:
    colcon = _colcon()
    ws = tmp_path_factory.mktemp("colcon_ws")
    shutil.copytree(ROOT, ws / "src" / PACKAGE, ignore=COPY_IGNORE)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    # no network: nothing may be fetched (install_requires are not resolved by the ament_python build)
    env.pop("PYTHONPATH", None)
    result = subprocess.run([colcon, "--log-base", str(ws / "log"), "build", "--base-paths", str(ws / "src"),
                             "--build-base", str(ws / "build"), "--install-base", str(ws / "install"),
                             "--event-handlers", "console_direct-"],
                            cwd=ws, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"colcon build failed:\n{result.stdout}\n{result.stderr}"
    return ws / "install" / PACKAGE


def test_colcon_layout(colcon_install):
    share = colcon_install / "share" / PACKAGE
    assert (share / "package.xml").is_file()
    assert (share / "launch").is_dir()
    assert (share / "config").is_dir()
    for launch_file in (ROOT / "launch").glob("*.launch.py"):
        assert (share / "launch" / launch_file.name).is_file(), f"{launch_file.name} not installed"
    for config_file in (ROOT / "config").glob("*"):
        if config_file.is_file():
            assert (share / "config" / config_file.name).is_file(), f"config/{config_file.name} not installed"
    assert (colcon_install / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE).is_file()
    for exe in ("lumde_depth_node", "lumde"):
        path = colcon_install / "lib" / PACKAGE / exe
        assert path.is_file() and os.access(path, os.X_OK), f"executable {exe} missing from lib/{PACKAGE}"


def test_installed_lumde_runs_from_install_space(colcon_install, tmp_path):
    site = next((colcon_install / "lib").glob("python3*/site-packages"))
    assert (site / PACKAGE / "__init__.py").is_file()
    for weights in (ROOT / PACKAGE / "weights").glob("*"):
        assert (site / PACKAGE / "weights" / weights.name).is_file(), f"weights/{weights.name} not installed"
    env = dict(os.environ, PYTHONPATH=str(site))
    result = subprocess.run([sys.executable, str(colcon_install / "lib" / PACKAGE / "lumde"), "--version"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("lumde_depth ")
    where = subprocess.run([sys.executable, "-c", "import lumde_depth; print(lumde_depth.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout
