"""The lumde_depth node alone, with a params file and the input/output topics as launch arguments.

The node applies the shipped large-message Fast DDS profile to itself unless FASTDDS_DEFAULT_PROFILES_FILE /
FASTRTPS_DEFAULT_PROFILES_FILE or another RMW_IMPLEMENTATION is set (its log says which); your own
subscribers of depth/points need the profile too (README, "Large messages and DDS").

    ros2 launch lumde_depth depth_completion.launch.py image:=/camera/image_raw \
        camera_info:=/camera/camera_info points:=/lidar/points model:=/path/student.pt
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

TOPICS = ("image", "camera_info", "points", "depth/image", "depth/camera_info", "depth/points",
          "depth/sparse", "depth/colored")


def generate_launch_description() -> LaunchDescription:
    args = [
        DeclareLaunchArgument("params_file", description="node parameters (ROS 2 params yaml)",
                              default_value=PathJoinSubstitution([FindPackageShare("lumde_depth"), "config",
                                                                  "default.yaml"])),
        DeclareLaunchArgument("model", default_value="", description="model file; empty = the shipped student"),
        DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (bag replay)"),
    ]
    args += [DeclareLaunchArgument(topic.replace("/", "_"), default_value=topic, description=f"remap '{topic}'")
             for topic in TOPICS]
    node = Node(
        package="lumde_depth", executable="lumde_depth_node", name="lumde_depth_node",
        namespace=LaunchConfiguration("namespace"), output="screen", emulate_tty=True,
        parameters=[LaunchConfiguration("params_file"),
                    {"model": LaunchConfiguration("model"),
                     "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)}],
        remappings=[(topic, LaunchConfiguration(topic.replace("/", "_"))) for topic in TOPICS],
    )
    return LaunchDescription([*args, node])
