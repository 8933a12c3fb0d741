"""lumde_depth.engine."""
