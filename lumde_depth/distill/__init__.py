"""lumde_depth.distill."""
