"""One lumde_depth node for several cameras around one LiDAR (parameter ``cameras``; config/ddad.yaml is the
DDAD rig's six cameras).

Each camera's topics live under its name, relative to the node's namespace: ``<camera>/image`` and
``<camera>/camera_info`` in, ``<camera>/depth/image``, ``<camera>/depth/camera_info``, ``<camera>/depth/points``
(and ``depth/confidence``, ``depth/colored``, ``depth/sparse`` where enabled) out; one ``points`` cloud in. The
cloud is converted once per sweep and the cameras' images go through the network in one batch.

    ros2 launch lumde_depth multi_camera.launch.py points:=/lidar/points model:=/path/student.pt
    ros2 launch lumde_depth multi_camera.launch.py params_file:=/path/my_rig.yaml namespace:=sensors

The params file is given after config/default.yaml, so it only needs what differs (cameras, their
extrinsics). As the single-camera launch file, the node applies the shipped large-message Fast DDS profile
to itself unless the user set one (README, "Large messages and DDS").
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    config = PathJoinSubstitution([FindPackageShare("lumde_depth"), "config"])
    args = [
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([config, "ddad.yaml"]),
                              description="the rig's parameters (cameras, <camera>.T_cam_lidar), over default.yaml"),
        DeclareLaunchArgument("model", default_value="", description="model file; empty = the shipped student"),
        DeclareLaunchArgument("namespace", default_value="", description="node namespace (the cameras' topics "
                                                                          "are relative to it)"),
        DeclareLaunchArgument("points", default_value="points", description="remap the LiDAR cloud 'points'"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (bag replay)"),
    ]
    node = Node(
        package="lumde_depth", executable="lumde_depth_node", name="lumde_depth_node",
        namespace=LaunchConfiguration("namespace"), output="screen", emulate_tty=True,
        parameters=[PathJoinSubstitution([config, "default.yaml"]), LaunchConfiguration("params_file"),
                    {"model": LaunchConfiguration("model"),
                     "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)}],
        remappings=[("points", LaunchConfiguration("points"))],
    )
    return LaunchDescription([*args, node])
