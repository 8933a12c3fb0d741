"""The RViz config shows what the node publishes: every topic in it is one of the node's outputs."""
from __future__ import annotations

from pathlib import Path

import yaml

RVIZ = Path(__file__).resolve().parents[1] / "config" / "lumde_depth.rviz"
NODE_OUTPUTS = {"depth/image", "depth/camera_info", "depth/points", "depth/sparse", "depth/colored"}


def _displays(config: dict) -> list[dict]:
    return config["Visualization Manager"]["Displays"]


def test_rviz_topics_are_node_outputs():
    import ast
    source = (Path(__file__).resolve().parents[1] / "lumde_depth" / "ros" / "node.py").read_text()
    tables = [node.value for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Assign)
              and any(getattr(t, "id", "") == "_OUTPUT_TYPES" for t in node.targets)]
    assert len(tables) == 1, "node.py should have one _OUTPUT_TYPES table (topic -> message type)"
    published = {key.value for key in tables[0].keys} | {"diagnostics"}
    assert NODE_OUTPUTS <= published          # the node's table holds the names this test knows
    topics = {d["Name"]: d["Topic"]["Value"] for d in _displays(yaml.safe_load(RVIZ.read_text())) if "Topic" in d}
    assert topics, "no topic displays in the rviz config"
    for name, topic in topics.items():
        assert topic.lstrip("/") in published, f"display '{name}' shows {topic}, which the node does not publish"


def test_rviz_shows_the_cloud_the_depth_image_and_the_colour_map():
    displays = {d["Topic"]["Value"]: d for d in _displays(yaml.safe_load(RVIZ.read_text())) if "Topic" in d}
    assert displays["/depth/points"]["Class"] == "rviz_default_plugins/PointCloud2"
    assert displays["/depth/points"]["Color Transformer"] == "RGB8"
    assert displays["/depth/image"]["Class"] == "rviz_default_plugins/Image"
    assert displays["/depth/colored"]["Class"] == "rviz_default_plugins/Image"
    fixed = yaml.safe_load(RVIZ.read_text())["Visualization Manager"]["Global Options"]["Fixed Frame"]
    assert fixed == "camera_color_left"     # the image frame of `lumde kitti2bag` bags
