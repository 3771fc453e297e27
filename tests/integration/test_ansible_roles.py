"""The Ansible roles applied for real to this machine, into a fresh folder: the first apply
renders everything, a second apply changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stack import services
from stack.launch import LaunchSpec


def _changed(output: str) -> int:
    recap = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", output)
    assert recap, f"no clean PLAY RECAP in:\n{output[-3000:]}"
    return int(recap.group(1))


@pytest.mark.ansible
def test_local_playbook_converges_and_is_idempotent(stack_config, tmp_path: Path) -> None:
    var = tmp_path / "var"
    first = services.provision(stack_config, var=var, echo=False).stdout
    second = services.provision(stack_config, var=var, echo=False).stdout
    assert _changed(first) > 0
    assert _changed(second) == 0, second[-3000:]
    for name in services.ORDER:
        spec = LaunchSpec.load(var / "launch" / f"{name}.json")
        assert spec.argv and spec.ports and Path(spec.argv[0]).name in {"java", "minio"}
        assert str(var) in spec.log
    for endpoint in ("kafka", "cassandra", "hdfs", "s3", "spark"):
        assert (var / "endpoints" / f"{endpoint}.json").stat().st_size > 0
    assert oct((var / "endpoints" / "s3.json").stat().st_mode)[-3:] == "600"
