"""lumde_depth: camera + LiDAR depth completion for ROS 2.

Layers point one way: geometry -> data -> models -> distill -> engine -> inference -> ros -> cli.
Only ``lumde_depth.ros`` (and the CLI verbs that need it) import rclpy.
"""

__version__ = "0.1.0"
