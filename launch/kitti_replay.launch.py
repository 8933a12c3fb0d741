"""Replay a KITTI bag (from `lumde kitti2bag`) through the node and show it in RViz, on sim time.

    ros2 launch lumde_depth kitti_replay.launch.py bag:=drive_0023.mcap \
        calib:=/data/kitti/2011_09_26 model:=/path/student.pt

Plays with `ros2 bag play --clock` where rosbag2 is installed, else with `lumde bag play --clock`.
Sets FASTDDS_DEFAULT_PROFILES_FILE to config/fastdds_large_messages.xml (large_messages:=false to
keep your own), so 1.4 MB images and 2 MB clouds go through shared memory.
"""
import shutil

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

KITTI_TOPICS = {"image": "/kitti/camera_color_left/image_raw",
                "camera_info": "/kitti/camera_color_left/camera_info",
                "points": "/kitti/velo/pointcloud"}


def play_command(bag: LaunchConfiguration, rate: LaunchConfiguration) -> list:
    """`ros2 bag play` when rosbag2 is installed, else the package's rclpy player."""
    if shutil.which("ros2"):
        return ["ros2", "bag", "play", bag, "--clock", "--rate", rate]
    return ["lumde", "bag", "play", bag, "--clock", "--rate", rate]


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("lumde_depth")
    bag, rate = LaunchConfiguration("bag"), LaunchConfiguration("rate")
    args = [
        DeclareLaunchArgument("bag", description="ROS 2 bag written by `lumde kitti2bag`"),
        DeclareLaunchArgument("calib", default_value="",
                              description="KITTI raw date folder (calib_*.txt): the extrinsic when TF is absent"),
        DeclareLaunchArgument("model", default_value="", description="model file; empty = the shipped student"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback rate"),
        DeclareLaunchArgument("rviz", default_value="true", description="start RViz"),
        DeclareLaunchArgument("large_messages", default_value="true",
                              description="use config/fastdds_large_messages.xml"),
    ]
    xml = PathJoinSubstitution([share, "config", "fastdds_large_messages.xml"])
    large = IfCondition(LaunchConfiguration("large_messages"))
    # FASTDDS_ (Fast DDS 3, Jazzy+) and FASTRTPS_ (Humble, Iron) name the same profile file
    profiles = [SetEnvironmentVariable(name, xml, condition=large)
                for name in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")]
    player = ExecuteProcess(cmd=play_command(bag, rate), output="screen")
    node = Node(
        package="lumde_depth", executable="lumde_depth_node", name="lumde_depth_node", output="screen",
        parameters=[PathJoinSubstitution([share, "config", "kitti.yaml"]),
                    {"use_sim_time": True, "model": LaunchConfiguration("model"),
                     "calib_file": LaunchConfiguration("calib")}],
        remappings=list(KITTI_TOPICS.items()),
    )
    rviz = Node(package="rviz2", executable="rviz2", name="rviz2", output="screen",
                arguments=["-d", PathJoinSubstitution([share, "config", "lumde_depth.rviz"])],
                parameters=[{"use_sim_time": True}], condition=IfCondition(LaunchConfiguration("rviz")))
    return LaunchDescription([*args, *profiles, player, node, rviz])
