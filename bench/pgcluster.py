"""A private PostgreSQL cluster that a run may stop and start: `initdb` + `pg_ctl` in a scratch directory.

The shared server on 5432 belongs to everyone on the machine; an outage test must not stop it. A
`PgCluster` is a whole server of its own on a free port (trust authentication for `postgres` on
127.0.0.1 only, fsync off: an outage here is a server crash, not a power cut, so the WAL in the OS's
cache is enough for recovery), started and stopped with `pg_ctl`. `stop(mode="immediate")` is a crash
(no shutdown checkpoint, every backend killed, WAL recovery at the next start); "fast" is an
operator's restart. PostgreSQL refuses to run as root: when we are root, the binaries run as the
`postgres` system user (runuser), which then owns the data directory.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

PG_BIN_DIRS = ("/usr/local/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")


def pg_binary(name: str) -> str | None:
    """Path of initdb / pg_ctl, or None when this machine has no PostgreSQL server binaries."""
    for folder in PG_BIN_DIRS:
        path = Path(folder) / name
        if path.exists():
            return str(path)
    return shutil.which(name)


def available() -> str | None:
    """Why a private cluster cannot run here, or None when it can."""
    missing = [name for name in ("initdb", "pg_ctl") if pg_binary(name) is None]
    if missing:
        return f"no {' / '.join(missing)} on this machine (Debian: postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run PostgreSQL as"
    return None


class PgCluster:
    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.data = root / "pgdata"
        self.port = port
        self.log = root / "postgres.log"
        self.running = False
        self.outages: list[tuple[float, float]] = []  # (stopped, started) monotonic times
        self._as_postgres = os.geteuid() == 0

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, argv: list[str], *, timeout: float = 60) -> subprocess.CompletedProcess:
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.root.chmod(0o755)
            self.root.parent.chmod(0o755)  # runuser must reach the folder (mkdtemp makes it 0700)
        done = self._run(
            [pg_binary("initdb") or "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}\n{done.stderr}")
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                "fsync = off\nfull_page_writes = off\nmax_connections = 200\nshared_buffers = 64MB\n"
                "log_min_messages = warning\n"
            )

    def start(self) -> None:
        done = self._run(
            [pg_binary("pg_ctl") or "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start"],
            timeout=90,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed:\n{done.stdout}\n{done.stderr}\n{self.tail()}")
        if self.outages and self.outages[-1][1] == 0.0:
            self.outages[-1] = (self.outages[-1][0], time.monotonic())
        self.running = True

    def stop(self, mode: str = "immediate") -> None:
        """`immediate`: a crash (WAL recovery at the next start); `fast`: an orderly restart."""
        if not self.running:
            return
        done = self._run([pg_binary("pg_ctl") or "pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop"], timeout=90)
        if done.returncode != 0 and "Is server running?" not in done.stderr:
            raise RuntimeError(f"pg_ctl stop failed:\n{done.stdout}\n{done.stderr}")
        self.running = False
        self.outages.append((time.monotonic(), 0.0))

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
