"""lumde_depth.ros."""
