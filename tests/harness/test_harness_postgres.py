"""The harness's own PostgreSQL is a real server apart from the shared one:
its own port and directory, run by a non-root user, and a restart keeps the
data while cutting every session."""
from __future__ import annotations

import psycopg
import pytest

from devservers.postgres import PostgresServer
from devservers.util import port_open

pytestmark = pytest.mark.slow


def test_a_restart_keeps_rows_and_cuts_sessions(postgres_server: PostgresServer) -> None:
    assert postgres_server.port != 5432
    url = postgres_server.create_database("harness")
    conn = psycopg.connect(f"host=127.0.0.1 port={postgres_server.port} user=postgres dbname=harness",
                           autocommit=True, connect_timeout=5)
    conn.execute("CREATE TABLE t (v int)")
    conn.execute("INSERT INTO t VALUES (7)")

    postgres_server.stop()
    assert not postgres_server.running and not port_open("127.0.0.1", postgres_server.port)
    postgres_server.start()

    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")  # the old session was cut by the restart
    conn.close()
    assert postgres_server.psql("SELECT v FROM t", database="harness").strip() == "7"
    assert url.endswith(f":{postgres_server.port}/harness")


def test_the_server_does_not_run_as_root(postgres_server: PostgresServer) -> None:
    assert postgres_server.psql("SELECT current_setting('data_directory')").strip() == str(postgres_server.data_dir)
    pid = int(postgres_server.data_dir.joinpath("postmaster.pid").read_text().split()[0])
    status = open(f"/proc/{pid}/status").read()
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    assert uid != 0


def test_a_cluster_left_by_a_dead_session_is_swept(postgres_server: PostgresServer) -> None:
    """A session killed by a timeout cannot clean up; the next one does."""
    import subprocess

    from devservers.postgres import sweep_stale

    dead = subprocess.Popen(["true"])
    dead.wait()
    (postgres_server.base_dir / "owner.pid").write_text(str(dead.pid))
    assert postgres_server.base_dir in sweep_stale()
    assert not postgres_server.base_dir.exists() and not port_open("127.0.0.1", postgres_server.port)
