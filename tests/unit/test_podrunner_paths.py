"""The pod runner's path remapping: pod paths move into the pod's rootfs, host files stay."""

from __future__ import annotations

import tempfile
from pathlib import Path

from podrunner.paths import Remapper


def test_paths_under_a_mount_move_into_the_rootfs(tmp_path: Path) -> None:
    remap = Remapper(tmp_path, ["/etc/tradebot", "/tmp"]).remap
    assert remap("/etc/tradebot/runtime.json") == f"{tmp_path}/etc/tradebot/runtime.json"
    assert remap("/tmp") == f"{tmp_path}/tmp"
    assert remap("/tmp/not-on-this-host/file") == f"{tmp_path}/tmp/not-on-this-host/file"
    assert remap("/usr/bin/python3") == "/usr/bin/python3"
    assert remap("/etc/tradebotx") == "/etc/tradebotx"


def test_an_existing_host_file_under_a_mount_is_left_alone(tmp_path: Path) -> None:
    # e.g. CI's checkout and venv living under /tmp while the pod mounts an emptyDir at /tmp
    with tempfile.NamedTemporaryFile(dir="/tmp") as host_file:
        assert Remapper(tmp_path, ["/tmp"]).remap(host_file.name) == host_file.name
