"""lumde_depth.data."""
