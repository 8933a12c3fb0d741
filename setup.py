"""ament_python / setuptools build of lumde_depth (colcon and pip both use this file)."""
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "lumde_depth"


def _share(folder: str) -> list[str]:
    return sorted(str(p) for p in Path(folder).glob("*") if p.is_file())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["weights/*"]},
    include_package_data=True,
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", sorted(glob("launch/*.launch.py"))),
        (f"share/{PACKAGE}/config", _share("config")),
        (f"share/{PACKAGE}/config/train", _share("config/train")),
    ],
    install_requires=["setuptools", "numpy", "pyyaml"],
    zip_safe=False,
    maintainer="lumde_depth developers",
    maintainer_email="dev@lumde-depth.org",
    description="Camera + LiDAR depth completion for ROS 2 (LSPKD, CDSPN, LUMDE).",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "lumde = lumde_depth.cli.main:main",
            "lumde_depth_node = lumde_depth.ros.node_main:main",
        ],
    },
)
