"""lumde_depth.geometry."""
