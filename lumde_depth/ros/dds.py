"""The shipped large-message Fast DDS profile, applied by default (no rclpy here: it must run before it).

Fast DDS's default transports carry a KITTI image (1.4 MB), cloud (2 MB) or organized depth cloud (7 MB)
badly on one machine: its shared-memory segment is 512 kB, so they fall back to fragmented UDP and a
best-effort reader loses most of them. ``config/fastdds_large_messages.xml`` gives shared memory 16 MB
segments. Fast DDS reads it from ``FASTRTPS_DEFAULT_PROFILES_FILE`` (Fast DDS 2: Humble, Jazzy) or
``FASTDDS_DEFAULT_PROFILES_FILE`` (Fast DDS 3: Kilted, whose rmw warns that the old name is deprecated)
when a process creates its first participant, i.e. at ``rclpy.init``; so :func:`apply_default_profile`
sets the one this distro reads (:func:`profile_variables`) in the environment of the process that calls
it, before that, unless the user chose a profile or another RMW.

Where DDS discovery is limited to this machine (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` or
``ROS_LOCALHOST_ONLY=1``) the profile's UDP transport is limited to 127.0.0.1 as well
(:func:`loopback_profile`): the user's own transports would otherwise replace the RMW's localhost set-up.

With the shipped profile, ``RMW_FASTRTPS_USE_QOS_FROM_XML=1`` is set too (unless the user set it): only then
does rmw_fastrtps keep the profile's endpoint settings, whose point is the history memory policy ``DYNAMIC``
(a sample's payload is freed once the sample is done; rmw_fastrtps's ``PREALLOCATED_WITH_REALLOC`` keeps
every payload at the largest size it ever held, e.g. 86 MB for good after one 4096x3000 frame).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import MutableMapping

PROFILE_NAME = "fastdds_large_messages.xml"
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
FAST_DDS_RMWS = ("rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp")
FAST_DDS_2_DISTROS = ("humble", "iron", "jazzy")   # Fast DDS 2.x: FASTRTPS_DEFAULT_PROFILES_FILE
QOS_FROM_XML = "RMW_FASTRTPS_USE_QOS_FROM_XML"   # "1": rmw_fastrtps keeps the profile's endpoint settings


def profile_variables(environ: MutableMapping[str, str] | None = None) -> tuple[str, ...]:
    """The profile variable(s) this distro's Fast DDS reads: ``FASTRTPS_...`` on Humble / Iron / Jazzy
    (``ROS_DISTRO``), ``FASTDDS_...`` on Kilted and later (and without a sourced distro, as PyPI's wheels)."""
    environ = os.environ if environ is None else environ
    return (PROFILE_VARIABLES[1],) if environ.get("ROS_DISTRO", "").lower() in FAST_DDS_2_DISTROS \
        else (PROFILE_VARIABLES[0],)


def shipped_profile() -> Path:
    """``config/fastdds_large_messages.xml``: installed (``share/lumde_depth/config``) or in the source tree."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        try:
            installed = Path(get_package_share_directory("lumde_depth")) / "config" / PROFILE_NAME
            if installed.is_file():
                return installed
        except (PackageNotFoundError, LookupError, OSError):   # not installed; no AMENT_PREFIX_PATH at all
            pass
    except ImportError:
        pass
    source = Path(__file__).resolve().parents[2] / "config" / PROFILE_NAME
    if not source.is_file():
        raise FileNotFoundError(f"the shipped Fast DDS profile {PROFILE_NAME} is neither installed "
                                f"(share/lumde_depth/config) nor at {source}")
    return source


def loopback_profile(profile: Path, folder: Path) -> Path:
    """``profile`` with its UDP transport limited to 127.0.0.1, written to ``folder`` (atomically)."""
    xml = profile.read_text()
    loopback = xml.replace("</receiveBufferSize>", "</receiveBufferSize>\n      <interfaceWhiteList>"
                           "<address>127.0.0.1</address></interfaceWhiteList>")
    if loopback == xml:
        raise ValueError(f"{profile} has no receiveBufferSize to attach the loopback allowlist to")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PROFILE_NAME.replace(".xml", "_loopback.xml")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(loopback)
    tmp.replace(path)
    return path


def localhost_only(environ: MutableMapping[str, str]) -> bool:
    return (environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").upper() == "LOCALHOST"
            or environ.get("ROS_LOCALHOST_ONLY", "") == "1")


def _cache() -> Path:
    return Path(os.environ.get("LUMDE_CACHE", Path.home() / ".cache" / "lumde_depth")) / "dds"


def _endpoint_settings(environ: MutableMapping[str, str]) -> str:
    """Set :data:`QOS_FROM_XML` to 1 unless the user set it; the log's words for what the endpoints get."""
    environ.setdefault(QOS_FROM_XML, "1")
    if environ[QOS_FROM_XML] == "1":
        return "sample payloads freed after use"
    return f"{QOS_FROM_XML}={environ[QOS_FROM_XML]} as you set it: rmw_fastrtps's endpoint settings, " \
           "which keep sample payloads at their largest size"


def apply_default_profile(environ: MutableMapping[str, str] | None = None) -> str:
    """Point the profile variable of ``environ`` (default ``os.environ``) at the shipped profile unless the
    user set either name or chose an RMW other than Fast DDS, with :data:`QOS_FROM_XML` where the shipped
    profile is used; returns one sentence for the log saying which profile this process uses. Call it before
    ``rclpy.init``."""
    environ = os.environ if environ is None else environ
    own = next((name for name in PROFILE_VARIABLES if environ.get(name)), None)
    if own is not None:
        if Path(environ[own]).name.startswith(PROFILE_NAME[:-4]):
            return f"Fast DDS profile: the shipped large-message profile {environ[own]} (from {own}; " \
                   f"{_endpoint_settings(environ)})"
        return f"Fast DDS profile {environ[own]} (from {own}; the shipped large-message profile is not applied)"
    rmw = environ.get("RMW_IMPLEMENTATION", "")
    if rmw and rmw not in FAST_DDS_RMWS:
        return f"RMW {rmw}: the shipped Fast DDS large-message profile does not apply (configure {rmw} for " \
               "large messages yourself)"
    profile = shipped_profile()
    if localhost_only(environ):
        profile = loopback_profile(profile, _cache())
    for name in profile_variables(environ):
        environ[name] = str(profile)
    where = ", its UDP limited to 127.0.0.1 as discovery is" if localhost_only(environ) else ""
    return (f"Fast DDS profile: the shipped large-message profile {profile} (16 MB shared-memory segments{where}; "
            f"{_endpoint_settings(environ)}); set FASTDDS_DEFAULT_PROFILES_FILE / FASTRTPS_DEFAULT_PROFILES_FILE "
            f"to use your own")
