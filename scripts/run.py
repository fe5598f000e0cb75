#!/usr/bin/env python
"""`make run`: the whole PyScaler stack on one machine, in the foreground.

Starts (unless already running) memcached, then the demo sshd (the demo
cluster's node is this machine), a demo JVM with JMX remote and a local EC2
emulator (moto's server, on loopback; DEMO_EC2=0 leaves it out), migrates,
creates the admin user, loads the demo configuration (with the emulator: a
target-tracking policy that grows the demo cluster under load, its launched
instances mapped to the demo sshd), and runs the web server, a Celery worker
and Celery beat until Ctrl-C, which stops every process this script started.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devservers.util import port_open, stop_process, wait_for_port  # noqa: E402

VENV_BIN = Path(sys.executable).parent
VAR = Path(os.environ.get("PYSCALER_VAR_DIR", REPO / "var"))
HOST = os.environ.get("RUN_HOST", "127.0.0.1")
PORT = int(os.environ.get("RUN_PORT", "8000"))
DEMO_SSH_PORT = int(os.environ.get("DEMO_SSH_PORT", "2222"))
DEMO_JMX_PORT = int(os.environ.get("DEMO_JMX_PORT", "9010"))
DEMO_MOTO_PORT = int(os.environ.get("DEMO_MOTO_PORT", "5055"))
#: The demo's own RabbitMQ virtual host (unless CELERY_BROKER_URL names one):
#: tasks queued by other stacks on the same broker never reach the demo's worker.
DEMO_VHOST = "pyscaler-demo"
DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672/"
QUEUES = "collect,control,actions"

started: list[tuple[str, subprocess.Popen]] = []
stoppers: list = []


def say(message: str) -> None:
    print(f"[make run] {message}", flush=True)


def manage(*args: str, env: dict) -> None:
    subprocess.run([str(VENV_BIN / "python"), "manage.py", *args], cwd=REPO, env=env, check=True)


def spawn(name: str, argv: list[str], env: dict) -> subprocess.Popen:
    # Each child gets its own process group so Ctrl-C reaches it only through
    # us, and we stop it (and its pool children) as a whole.
    proc = subprocess.Popen(argv, cwd=REPO, env=env, start_new_session=True)
    started.append((name, proc))
    return proc


def ensure_memcached(env: dict) -> None:
    servers = env.get("MEMCACHED_SERVERS", "127.0.0.1:11211").split(",")
    host, port = servers[0].rsplit(":", 1)
    if port_open(host, int(port)):
        say(f"memcached already answers on {host}:{port}")
        return
    from devservers.memcached import MemcachedServer

    server = MemcachedServer(port=int(port), host=host).start()
    stoppers.append(server.stop)
    say(f"started memcached on {host}:{port}")


def ensure_broker(env: dict) -> None:
    """The demo's broker: its own vhost (created with rabbitmqctl) unless
    CELERY_BROKER_URL is set, then its queues purged. Messages left by an
    earlier run name steps and nodes of that run's database ("step 54 does
    not exist; message dropped"): a fresh demo starts with empty queues."""
    if "CELERY_BROKER_URL" not in env:
        ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
        try:
            for args in (["add_vhost", DEMO_VHOST],
                         ["set_permissions", "-p", DEMO_VHOST, "guest", ".*", ".*", ".*"]):
                subprocess.run([ctl, "-q", *args], check=True, capture_output=True, text=True, timeout=60)
            env["CELERY_BROKER_URL"] = DEFAULT_BROKER + DEMO_VHOST
            say(f"the demo uses RabbitMQ vhost {DEMO_VHOST}")
        except (OSError, subprocess.SubprocessError) as exc:
            say(f"cannot create RabbitMQ vhost {DEMO_VHOST} ({exc}); using the default vhost")
    purged = subprocess.run([str(VENV_BIN / "celery"), "-A", "pyscaler", "purge", "-f", "-Q", QUEUES],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    if purged.returncode == 0:
        say(f"emptied the demo's queues: {purged.stdout.strip()}")
    else:
        say(f"could not empty the demo's queues: {(purged.stderr or purged.stdout).strip()[-300:]}")


def start_demo_sshd():
    from devservers.sshd import SshServer

    server = SshServer(VAR / "demo" / "sshd", host="127.0.0.1", port=DEMO_SSH_PORT)
    if port_open("127.0.0.1", DEMO_SSH_PORT):
        say(f"port {DEMO_SSH_PORT} busy: assuming the demo sshd from an earlier run is still up")
    else:
        server.start()
        stoppers.append(server.stop)
        say(f"started the demo sshd on 127.0.0.1:{DEMO_SSH_PORT} (keys under {server.workdir})")
    return server


def start_demo_jvm() -> int | None:
    try:
        from devservers.jvm import JmxJvm
    except ImportError:
        return None
    if port_open("127.0.0.1", DEMO_JMX_PORT):
        say(f"port {DEMO_JMX_PORT} busy: assuming the demo JVM is still up")
        return DEMO_JMX_PORT
    jvm = JmxJvm(port=DEMO_JMX_PORT, workdir=VAR / "demo" / "jvm").start()
    stoppers.append(jvm.stop)
    say(f"started the demo JVM with JMX remote on 127.0.0.1:{DEMO_JMX_PORT}")
    return DEMO_JMX_PORT


def start_demo_ec2(env: dict, sshd) -> list[str]:
    """The local EC2 emulator the demo policy launches instances on (never
    AWS: the demo's processes get its endpoint and dummy credentials), and
    demo_setup's arguments naming its AMI and default subnet. Launched
    instances are reached as the demo sshd (NODE_ADDRESS_OVERRIDE, demo only)."""
    if os.environ.get("DEMO_EC2", "1") == "0":
        return []
    import boto3

    from devservers.moto_server import DEFAULT_AMI_ID, MotoServer

    server = MotoServer(port=DEMO_MOTO_PORT, log_path=VAR / "demo" / "moto.log")
    if port_open("127.0.0.1", DEMO_MOTO_PORT):
        say(f"port {DEMO_MOTO_PORT} busy: assuming the demo EC2 emulator is still up")
    else:
        (VAR / "demo").mkdir(parents=True, exist_ok=True)
        server.start()
        stoppers.append(server.stop)
        say(f"started the demo EC2 emulator (moto) on {server.endpoint_url}")
    env.update(server.env())
    env.setdefault("AWS_WAITER_DELAY_S", "1")  # the emulator answers at once
    env["NODE_ADDRESS_OVERRIDE"] = f"*=127.0.0.1:{sshd.port}"
    ec2 = boto3.client("ec2", endpoint_url=server.endpoint_url, region_name=env["AWS_DEFAULT_REGION"],
                       aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"][0]["SubnetId"]
    return ["--ec2-ami", DEFAULT_AMI_ID, "--ec2-subnet", subnet]


def ensure_admin(env: dict) -> None:
    password = os.environ.get("PYSCALER_ADMIN_PASSWORD")
    script = (
        "from django.contrib.auth.models import User, Group\n"
        "import sys\n"
        "u = User.objects.filter(username='admin').first()\n"
        "if u is None:\n"
        "    u = User.objects.create_superuser('admin', 'admin@localhost', sys.argv[1])\n"
        "    u.groups.add(Group.objects.get(name='admins'))\n"
        "    print('created')\n"
        "else:\n"
        "    print('exists')\n"
    )
    new_password = password or secrets.token_urlsafe(12)
    out = subprocess.run(
        [str(VENV_BIN / "python"), "-c",
         "import django, os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE','pyscaler.settings'); "
         f"django.setup(); exec({script!r})", new_password],
        cwd=REPO, env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()
    if out == "created":
        say(f"admin user created: admin / {new_password}  (shown once; change it in the admin)")
    else:
        say("admin user exists (reset its password with: .venv/bin/python manage.py changepassword admin)")


def main() -> int:
    VAR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("PYSCALER_VAR_DIR", str(VAR))
    env.setdefault("EMAIL_URL", "filemail://")
    env.setdefault("EMAIL_FILE_PATH", str(VAR / "mail"))
    # One key for this run's beat and workers (collect messages are signed);
    # a message left on the broker by another run is then refused, not run.
    env.setdefault("COLLECT_SIGNING_KEY", secrets.token_urlsafe(32))

    ensure_memcached(env)
    ensure_broker(env)
    sshd = start_demo_sshd()
    # The demo node's host key is known from the file sshd's keys were made
    # with: host keys stay verified in the demo too.
    env.setdefault("SSH_KNOWN_HOSTS", str(sshd.known_hosts_path))
    env.setdefault("SSH_KEY_PATH", str(sshd.client_key_path))
    jmx_port = start_demo_jvm()
    ec2_args = start_demo_ec2(env, sshd)

    manage("migrate", "--noinput", "-v", "0", env=env)
    manage("collectstatic", "--noinput", "-v", "0", env=env)
    ensure_admin(env)
    demo_args = ["demo_setup", "--ssh-port", str(sshd.port), "--ssh-user", sshd.user,
                 "--ssh-key", str(sshd.client_key_path)]
    if jmx_port:
        demo_args += ["--jmx-port", str(jmx_port)]
    manage(*demo_args, *ec2_args, env=env)

    if port_open(HOST, PORT):
        say(f"port {PORT} is busy on {HOST}: set RUN_PORT to another port")
        return 1
    spawn("web", [str(VENV_BIN / "gunicorn"), "pyscaler.wsgi", "-b", f"{HOST}:{PORT}", "-w", "2",
                  "--timeout", "60", "--access-logfile", "-"], env)
    spawn("worker", [str(VENV_BIN / "celery"), "-A", "pyscaler", "worker", "-Q", "collect,control,actions",
                     "-c", "2", "-n", "run@%h", "-l", "INFO"], env)
    spawn("beat", [str(VENV_BIN / "celery"), "-A", "pyscaler", "beat", "-l", "INFO",
                   "-s", str(VAR / "celerybeat-schedule")], env)
    wait_for_port(HOST, PORT, timeout=30, proc=started[0][1], what="gunicorn")
    say(f"PyScaler is up: http://{HOST}:{PORT}/  (admin at http://{HOST}:{PORT}/admin/)")
    say(f"samples are logged under {VAR / 'samples'}; demo e-mails land in {VAR / 'mail'}")
    if ec2_args:
        say("autoscaling demo: `make load` for a few minutes, then watch the demo cluster's decisions "
            "timeline grow it to 2-3 nodes and shrink it when the load stops")
    say("Ctrl-C stops everything this command started")

    try:
        while True:
            for name, proc in started:
                if proc.poll() is not None:
                    say(f"{name} exited with status {proc.returncode}; stopping the rest")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("stopping")
        return 0
    finally:
        shutdown()


def shutdown() -> None:
    for name, proc in reversed(started):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for name, proc in reversed(started):
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stop_process(proc)
    for stop in reversed(stoppers):
        stop()
    say("all processes stopped")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    sys.exit(main())
