"""Replay a KITTI bag (from `lumde kitti2bag`) through the node and show it in RViz, on sim time.

    ros2 launch lumde_depth kitti_replay.launch.py bag:=drive_0023.mcap \
        calib:=/data/kitti/2011_09_26 model:=/path/student.pt

Plays with `ros2 bag play --clock` where rosbag2 is installed, else with `lumde bag play --clock`.
Sets the Fast DDS profile variable of this distro (FASTRTPS_DEFAULT_PROFILES_FILE on Humble / Jazzy,
FASTDDS_DEFAULT_PROFILES_FILE on Kilted) to config/fastdds_large_messages.xml for every process it starts
(player, node, RViz), unless you set one yourself (yours is kept; large_messages:=false leaves it alone), so 1.4 MB images, 2 MB clouds and 7 MB depth clouds go through
shared memory (README, "Large messages and DDS"); with it RMW_FASTRTPS_USE_QOS_FROM_XML=1 (unless you set it), so
that rmw_fastrtps keeps the profile's endpoint settings (sample payloads freed after use).
"""
import os
import shutil

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from lumde_depth.ros import dds

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
    # FASTRTPS_ (Fast DDS 2: Humble, Jazzy) or FASTDDS_ (Fast DDS 3: Kilted), the one this distro reads; a
    # profile the user set under either name is kept
    names = dds.PROFILE_VARIABLES
    profiles = [SetEnvironmentVariable(name, EnvironmentVariable(name, default_value=EnvironmentVariable(
        names[1 - names.index(name)], default_value=xml)), condition=large) for name in dds.profile_variables()]
    if not any(os.environ.get(name) for name in names):   # the shipped profile: its endpoint settings too
        keep_users = EnvironmentVariable(dds.QOS_FROM_XML, default_value="1")
        profiles.append(SetEnvironmentVariable(dds.QOS_FROM_XML, keep_users, condition=large))
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
