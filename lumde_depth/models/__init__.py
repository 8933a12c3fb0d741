"""lumde_depth.models."""
