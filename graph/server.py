"""Build, start, stop and inspect the local Neo4j Community server.

The jars come from Maven Central through ``launcher/pom.xml`` (``org.neo4j:neo4j``, which holds
``org.neo4j.server.CommunityEntryPoint``); they are copied once into ``launcher/lib``. Each kgr
home (``$KGR_HOME/neo4j``) has its own config, data, logs, pid file and generated password.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.settings import PROJECT_ROOT, Settings
from graph.exceptions import ServerLaunchError

log = logging.getLogger("kgr.neo4j")

LAUNCHER_DIR = PROJECT_ROOT / "launcher"
LIB_DIR = LAUNCHER_DIR / "lib"
ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
ADMIN_TOOL = "org.neo4j.cli.AdminTool"
# Letters and digits only: neo4j-admin parses its arguments with picocli, which reads a
# password that starts with "-" (token_urlsafe gives one about one time in 32) as an option.
PASSWORD_ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 32

CONF_TEMPLATE = """\
# Written by kgr on every start; edit Settings (KGR_*) instead. The JVM heap is
# set on the java command line (KGR_NEO4J_HEAP), since kgr starts the entry point directly.
server.default_listen_address=127.0.0.1
server.bolt.listen_address=127.0.0.1:{bolt_port}
server.bolt.advertised_address=127.0.0.1:{bolt_port}
{http}
server.https.enabled=false
dbms.security.auth_enabled=true
server.directories.data={data}
server.directories.logs={logs}
server.directories.run={run}
server.directories.import={import_dir}
server.memory.pagecache.size={pagecache}
server.memory.query_cache.per_db_cache_num_entries={query_cache}
db.transaction.timeout=0
dbms.usage_report.enabled=false
"""


def http_connector(port: int | None) -> str:
    """The HTTP connector's lines: off, or on ``port`` of 127.0.0.1 only (never another
    interface: the server's password is its only guard)."""
    if port is None:
        return "server.http.enabled=false"
    return (f"server.http.enabled=true\nserver.http.listen_address=127.0.0.1:{port}\n"
            f"server.http.advertised_address=127.0.0.1:{port}")


def new_password() -> str:
    """A random server password that neo4j-admin cannot mistake for an option."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


def proc_state(pid: int) -> str | None:
    """The one-letter state of ``/proc/<pid>/stat`` ('R', 'S', 'Z' for a zombie...), or None
    where there is no such process (or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ...": comm may hold spaces and parentheses, the state follows the last ')'
    rest = stat[stat.rfind(")") + 1:].split()
    return rest[0] if rest else None


def process_alive(pid: int, command_mark: str | None = None) -> bool:
    """Whether ``pid`` is a running process (and, with ``command_mark``, one whose command line
    holds it: a pid reused by another program is not our server).

    ``os.kill(pid, 0)`` alone counts a zombie as alive: a server that died as a child of this
    process (``kgr up`` started it) stays a zombie until reaped, and ``kgr neo4j start`` then
    waited for it to answer until its timeout. So a child of ours is reaped first, and the
    kernel's state letter is read for everyone else's.
    """
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass  # not our child: its parent reaps it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process, alive
    state = proc_state(pid)
    if state in ("Z", "X"):
        return False
    if command_mark is not None and state is not None:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return command_mark.encode() in cmdline
    return True


@dataclass(frozen=True)
class ServerStatus:
    """What ``kgr neo4j status`` reports."""

    running: bool
    pid: int | None
    uri: str
    home: Path
    bolt_port: int


class LocalNeo4j:
    """One local Neo4j server, rooted at ``settings.neo4j_home``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.neo4j_home.resolve()
        self.conf_dir = self.home / "conf"
        self.data_dir = self.home / "data"
        self.logs_dir = self.home / "logs"
        self.run_dir = self.home / "run"
        self.pid_file = self.run_dir / "kgr-neo4j.pid"
        self.password_file = self.home / "password"
        self.console_log = self.logs_dir / "console.log"

    # ----------------------------------------------------------------- build
    @staticmethod
    def build(quiet: bool = True) -> Path:
        """Copy the Neo4j jars from Maven Central into ``launcher/lib`` (once)."""
        marker = LIB_DIR / ".complete"
        if marker.exists():
            return LIB_DIR
        if shutil.which("mvn") is None:
            raise ServerLaunchError("Maven (mvn) is not installed; it is needed to fetch Neo4j")
        if shutil.which("java") is None:
            raise ServerLaunchError("Java (17+) is not installed; it is needed to run Neo4j")
        staging = LAUNCHER_DIR / f"lib.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            "mvn", "-B", "-f", str(LAUNCHER_DIR / "pom.xml"),
            "dependency:copy-dependencies", f"-DoutputDirectory={staging}",
        ]
        if quiet:
            cmd.insert(1, "-q")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            tail = (proc.stdout + proc.stderr)[-3000:]
            raise ServerLaunchError(f"fetching the Neo4j jars with Maven failed:\n{tail}")
        (staging / ".complete").write_text("ok\n")
        shutil.rmtree(LIB_DIR, ignore_errors=True)
        staging.rename(LIB_DIR)
        return LIB_DIR

    # ---------------------------------------------------------------- status
    def pid(self) -> int | None:
        """The server's pid, if the pid file names a live Neo4j process (a zombie, a dead
        process or a reused pid that is not Neo4j is no server)."""
        pid = self.recorded_pid()
        return pid if pid is not None and process_alive(pid, ENTRY_POINT) else None

    def recorded_pid(self) -> int | None:
        """The pid in the pid file, alive or not: a file whose process is gone means the
        server died (``stop`` removes the file)."""
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def bolt_open(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.settings.bolt_port)) == 0

    def status(self) -> ServerStatus:
        pid = self.pid()
        return ServerStatus(
            running=pid is not None and self.bolt_open(),
            pid=pid,
            uri=self.settings.resolved_uri,
            home=self.home,
            bolt_port=self.settings.bolt_port,
        )

    # ----------------------------------------------------------------- start
    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise start/stop across processes (parallel test runs, two shells)."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / ".launcher.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def start(self, timeout_s: float | None = None) -> ServerStatus:
        """Start the server in the background and wait until Bolt accepts our credentials.

        Idempotent: a server that already runs from this home is left as it is.
        """
        with self._lock():
            return self._start_locked(timeout_s)

    def revive(self, timeout_s: float | None = None) -> bool:
        """Start the server again if it died (its pid file is left but its process is gone);
        False when it runs, or was stopped on purpose (``stop`` removes the pid file). Decided
        under the launcher lock, so that a ``kgr neo4j stop`` in progress is not undone."""
        with self._lock():
            if self.recorded_pid() is None or self.pid() is not None:
                return False
            self.pid_file.unlink(missing_ok=True)
            self._start_locked(timeout_s)
            return True

    def _start_locked(self, timeout_s: float | None) -> ServerStatus:
        timeout_s = timeout_s or self.settings.neo4j_start_timeout_s
        if self.pid() is not None:
            self._wait_ready(timeout_s)
            return self.status()
        if self.bolt_open():
            raise ServerLaunchError(
                f"port {self.settings.bolt_port} is taken by another process; "
                "set KGR_BOLT_PORT or stop that process"
            )
        lib = self.build()
        for folder in (self.conf_dir, self.data_dir, self.logs_dir, self.run_dir,
                       self.home / "import"):
            folder.mkdir(parents=True, exist_ok=True)
        self._write_conf()
        self._ensure_password(lib)
        env = self._env()
        cmd = [
            "java", f"-Xms{self.settings.neo4j_heap}", f"-Xmx{self.settings.neo4j_heap}",
            "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError",
            "-Dfile.encoding=UTF-8",
            "-cp", f"{lib}/*", ENTRY_POINT,
            f"--home-dir={self.home}", f"--config-dir={self.conf_dir}",
        ]
        with open(self.console_log, "ab") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=self.home, start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        try:
            self._wait_ready(timeout_s, proc=proc)
        except ServerLaunchError:
            self._terminate(proc.pid, grace_s=10)
            self.pid_file.unlink(missing_ok=True)
            raise
        return self.status()

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["NEO4J_HOME"] = str(self.home)
        env["NEO4J_CONF"] = str(self.conf_dir)
        return env

    def _write_conf(self) -> None:
        s = self.settings
        (self.conf_dir / "neo4j.conf").write_text(
            CONF_TEMPLATE.format(
                bolt_port=s.bolt_port, data=self.data_dir, logs=self.logs_dir, run=self.run_dir,
                import_dir=self.home / "import", pagecache=s.neo4j_pagecache,
                query_cache=s.neo4j_query_cache_entries, http=http_connector(s.neo4j_http_port),
            )
        )

    def _ensure_password(self, lib: Path) -> None:
        """Generate a password on first start and set it before the database first runs."""
        if self.password_file.exists():
            return
        if (self.data_dir / "databases" / "system").exists():
            raise ServerLaunchError(
                f"{self.data_dir} holds a database but {self.password_file} is missing; "
                "restore the password file or remove the data directory"
            )
        password = new_password()
        proc = subprocess.run(
            ["java", "-cp", f"{lib}/*", ADMIN_TOOL, "dbms", "set-initial-password", password],
            capture_output=True, text=True, env=self._env(), cwd=self.home,
        )
        if proc.returncode != 0:
            raise ServerLaunchError(f"setting the initial password failed: {proc.stderr[-2000:]}")
        self.password_file.write_text(password + "\n")
        self.password_file.chmod(0o600)

    def _wait_ready(self, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
        from neo4j import GraphDatabase
        from neo4j.exceptions import AuthError, Neo4jError, ServiceUnavailable

        deadline = time.monotonic() + timeout_s
        password = self.password_file.read_text().strip() if self.password_file.exists() else ""
        last_error = "no answer"
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise ServerLaunchError(
                    f"Neo4j exited with code {proc.returncode} while starting.\n{self.log_tail()}"
                )
            if self.bolt_open():
                try:
                    with GraphDatabase.driver(
                        f"bolt://127.0.0.1:{self.settings.bolt_port}",
                        auth=(self.settings.neo4j_user, password), connection_timeout=2,
                    ) as driver:
                        driver.execute_query("RETURN 1", database_=self.settings.neo4j_database)
                    return
                except AuthError as exc:
                    raise ServerLaunchError(
                        f"Neo4j rejected the generated password: {exc}"
                    ) from exc
                except (ServiceUnavailable, Neo4jError, OSError) as exc:
                    last_error = str(exc)
            time.sleep(0.5)
        raise ServerLaunchError(
            f"Neo4j did not answer on Bolt within {timeout_s:.0f}s ({last_error}).\n"
            + self.log_tail()
        )

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for log in (self.console_log, self.logs_dir / "neo4j.log"):
            if log.exists():
                text = log.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {log} ---\n" + "\n".join(text))
        return "\n".join(parts)

    # ------------------------------------------------------------------ stop
    def stop(self, timeout_s: float = 60.0) -> bool:
        """Stop the server cleanly (SIGTERM, then SIGKILL after ``timeout_s``). True if it ran."""
        with self._lock():
            pid = self.pid()
            if pid is None:
                self.pid_file.unlink(missing_ok=True)
                return False
            self._terminate(pid, grace_s=timeout_s)
            self.pid_file.unlink(missing_ok=True)
            return True

    @staticmethod
    def _terminate(pid: int, grace_s: float) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try:
                finished, _ = os.waitpid(pid, os.WNOHANG)
                if finished == pid:
                    return
            except ChildProcessError:
                pass
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Neo4jSupervisor:
    """Restarts the local server if it dies while ``kgr up``/``kgr serve`` runs (a thread).

    Every ``interval_s`` it asks ``LocalNeo4j.revive``: a server whose pid file is left but
    whose process is gone (killed, crashed, out of memory) is started again; one stopped on
    purpose (``kgr neo4j stop`` removes the pid file) is left stopped. A failed restart is
    tried again after a backoff that doubles up to ``max_backoff_s``. The API needs nothing
    more: the driver opens new connections once the server answers, and /readyz says 503
    until then.
    """

    def __init__(self, server: LocalNeo4j, interval_s: float = 2.0,
                 max_backoff_s: float = 60.0) -> None:
        self.server = server
        self.interval_s = interval_s
        self.max_backoff_s = max_backoff_s
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kgr-neo4j-supervisor",
                                        daemon=True)

    def start(self) -> Neo4jSupervisor:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def __enter__(self) -> Neo4jSupervisor:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _run(self) -> None:
        backoff = self.interval_s
        failing = False
        while not self._stop.wait(backoff if failing else self.interval_s):
            dead = self.server.recorded_pid()
            try:
                revived = self.server.revive() if not failing else self._restart()
            except ServerLaunchError as exc:
                failing = True
                backoff = min(self.max_backoff_s, backoff * 2)
                log.error("restarting Neo4j failed; next try in %.0f s: %s", backoff,
                          str(exc).splitlines()[0])
                continue
            except Exception:  # noqa: BLE001 - the watcher must outlive any one bad check
                log.exception("the Neo4j supervisor's check failed")
                continue
            if revived:
                self.restarts += 1
                log.warning("Neo4j (pid %s) had died; restarted it as pid %s (restart %d)",
                            dead, self.server.recorded_pid(), self.restarts)
            failing, backoff = False, self.interval_s

    def _restart(self) -> bool:
        """After a failed restart the pid file is gone: start again unless it runs now."""
        if self.server.pid() is not None:
            return False
        self.server.start()
        return True
