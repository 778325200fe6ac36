"""The local server's liveness check: a zombie, a dead or a foreign process is no server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.settings import Settings
from graph.server import LocalNeo4j, proc_state, process_alive


def _zombie() -> subprocess.Popen[bytes]:
    """A child of this process that has exited and is not reaped yet (the Popen is kept:
    collecting it would reap the child)."""
    child = subprocess.Popen(["sleep", "60"])
    os.kill(child.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while proc_state(child.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.02)
    return child


def test_a_zombie_child_is_not_alive_and_is_reaped() -> None:
    zombie = _zombie()
    pid = zombie.pid
    assert proc_state(pid) == "Z"
    os.kill(pid, 0)  # what the old check did: a zombie still takes signal 0
    assert not process_alive(pid)
    assert proc_state(pid) is None  # reaped: no zombie left behind


def test_status_never_reports_a_zombie_or_a_foreign_process(tmp_path: Path) -> None:
    server = LocalNeo4j(Settings(home=tmp_path, bolt_port=1))
    server.run_dir.mkdir(parents=True)
    zombie = _zombie()
    pid = zombie.pid
    server.pid_file.write_text(str(pid))
    status = server.status()
    assert status.pid is None and not status.running
    assert server.recorded_pid() == pid  # the file is left: the server died, not stopped

    # a live process that is not Neo4j (a reused pid) is not the server either
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        server.pid_file.write_text(str(other.pid))
        assert process_alive(other.pid)
        assert server.pid() is None
    finally:
        other.kill()
        other.wait()
