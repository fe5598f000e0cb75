"""gunicorn settings for PyScaler's web process (`gunicorn -c deploy/gunicorn.conf.py pyscaler.wsgi`).

Read from the environment (the same env file as Django's settings), so one
file serves systemd, Docker and the tests. Pre-fork sync workers: the web side
only serves admin, console and graph pages; collection and actions run in
Celery workers, so a slow page never blocks monitoring.
"""
import os


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name}: expected a whole number, got {raw!r}") from None
    if value < 0:
        raise SystemExit(f"{name}: must not be negative, got {value}")
    return value


def _cpus() -> int:
    # The CPUs this process may run on (a cgroup cpuset or taskset), not the host's.
    return len(os.sched_getaffinity(0)) or 1


def default_workers(cpus: int) -> int:
    """gunicorn's rule of thumb, 2 x CPUs + 1, capped: each worker holds a whole
    Django process in memory, and page rendering here is cheap."""
    return min(2 * cpus + 1, 16)


bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")
# 0 (the default) means "from the CPU count".
workers = _int("GUNICORN_WORKERS", 0) or default_workers(_cpus())
worker_class = "sync"
# A request running longer is killed and logged; nginx's proxy_read_timeout is
# a little longer so the client sees gunicorn's 502/504 rather than a cut line.
timeout = _int("GUNICORN_TIMEOUT_S", 60)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT_S", 30)
keepalive = 5
# Recycle workers now and then: bounds the cost of any slow memory leak.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = max_requests // 10
# X-Forwarded-Proto/-For are trusted only from these proxy addresses.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Logs go to stdout/stderr: the journal (systemd) or `docker logs` keep them.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Client address as nginx saw it, request, status, bytes, referrer, agent and
# the time taken in milliseconds.
access_log_format = (
    '%({x-forwarded-for}i)s %(h)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'
)
proc_name = "pyscaler-web"
# gunicorn's control socket would sit in $HOME/.gunicorn (read-only under the
# systemd units' ProtectSystem=strict, and shared by every gunicorn of a user);
# systemd and Docker manage the process with signals instead (HUP reloads).
control_socket_disable = True
