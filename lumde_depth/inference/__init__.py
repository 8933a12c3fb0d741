"""lumde_depth.inference."""
