"""lumde_depth.cli."""
