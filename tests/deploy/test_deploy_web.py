"""The production web stack for real: gunicorn started with deploy/gunicorn.conf.py
behind Debian's nginx running the site rendered from deploy/nginx's template,
with TLS, on loopback ports. Pages reach Django with the right Host,
X-Forwarded-Proto and X-Forwarded-For; static files come from collectstatic's
output through nginx without touching gunicorn."""
from __future__ import annotations

import datetime as dt
import gzip
import http.client
import json
import os
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devservers.util import REPO_ROOT, free_port, require_binary, stop_process, wait_for_port

sys.path.insert(0, str(REPO_ROOT / "deploy"))
import render  # noqa: E402  (deploy/render.py: stdlib-only, not a package)

pytestmark = pytest.mark.slow

TEMPLATE = REPO_ROOT / "deploy" / "nginx" / "pyscaler.conf.template"
# The client connects from this loopback address; nginx and gunicorn talk over
# 127.0.0.1, so seeing it in gunicorn's log proves X-Forwarded-For is passed.
CLIENT_ADDRESS = "127.0.0.5"


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.pem", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def nginx_main_conf(workdir: Path, site: Path) -> str:
    """A minimal nginx.conf around the site, every path in the work directory
    (Debian's /etc/nginx/nginx.conf does the same job in production)."""
    temp = {name: workdir / f"tmp-{name}" for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(exist_ok=True)
    user = "user root;" if os.geteuid() == 0 else ""  # the static files live under a 0700 tmp dir
    return f"""
{user}
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log notice;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    access_log {workdir}/access.log;
    client_body_temp_path {temp['body']};
    proxy_temp_path {temp['proxy']};
    fastcgi_temp_path {temp['fastcgi']};
    uwsgi_temp_path {temp['uwsgi']};
    scgi_temp_path {temp['scgi']};
    include {site};
}}
"""


@dataclass
class Stack:
    workdir: Path
    http_port: int
    https_port: int
    static_root: Path
    gunicorn_log: Path
    tls: ssl.SSLContext

    def https(self, method: str, path: str, body: bytes | None = None,
              headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        conn = http.client.HTTPSConnection("127.0.0.1", self.https_port, context=self.tls, timeout=30,
                                           source_address=(CLIENT_ADDRESS, 0))
        conn.request(method, path, body=body, headers={"Host": f"localhost:{self.https_port}", **(headers or {})})
        response = conn.getresponse()
        response.body = response.read()  # type: ignore[attr-defined]
        conn.close()
        return response

    def http(self, path: str) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30,
                                          source_address=(CLIENT_ADDRESS, 0))
        conn.request("GET", path, headers={"Host": "localhost"})
        response = conn.getresponse()
        response.body = response.read()  # type: ignore[attr-defined]
        conn.close()
        return response

    def gunicorn_lines(self) -> list[str]:
        return self.gunicorn_log.read_text().splitlines() if self.gunicorn_log.exists() else []

    def wait_logged(self, fragment: str, timeout: float = 5.0) -> list[str]:
        """gunicorn writes its access line just after sending the response."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.gunicorn_lines() if fragment in line]
            if lines or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)


def production_env(workdir: Path, memcached_servers: list[str], gunicorn_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DEBUG="false",
        SECRET_KEY="deploy-test-" + "k" * 60,
        DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
        PYSCALER_VAR_DIR=str(workdir / "var"),
        STATIC_ROOT=str(workdir / "static"),
        ALLOWED_HOSTS="localhost",
        CSRF_TRUSTED_ORIGINS="https://localhost",
        BEHIND_TLS_PROXY="true",
        SECURE_SSL_REDIRECT="true",
        SECURE_COOKIES="true",
        SECURE_HSTS_SECONDS="3600",
        MEMCACHED_SERVERS=",".join(memcached_servers),
        CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//",
        GUNICORN_BIND=f"127.0.0.1:{gunicorn_port}",
        GUNICORN_WORKERS="2",
        GUNICORN_ACCESS_LOG=str(workdir / "gunicorn-access.log"),
    )
    return env


def render_site(workdir: Path, http_port: int, https_port: int, gunicorn_port: int, static_root: Path,
                cert: Path, key: Path) -> Path:
    site = workdir / "pyscaler.conf"
    site.write_text(render.render(TEMPLATE.read_text(), {
        "PYSCALER_SERVER_NAME": "localhost",
        "PYSCALER_HTTP_LISTEN": f"127.0.0.1:{http_port}",
        "PYSCALER_HTTPS_LISTEN": f"127.0.0.1:{https_port}",
        "PYSCALER_UPSTREAM": f"127.0.0.1:{gunicorn_port}",
        "PYSCALER_STATIC_ROOT": str(static_root),
        "PYSCALER_TLS_CERT": str(cert),
        "PYSCALER_TLS_KEY": str(key),
    }))
    return site


def wait_for_django(port: int, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    """gunicorn listens before its workers have imported Django: wait for an answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gunicorn exited with status {proc.returncode}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/healthz", headers={"Host": "localhost"})
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
        finally:
            conn.close()
    raise AssertionError(f"gunicorn's workers did not answer within {timeout:.0f} s")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, memcached_servers: list[str]) -> Iterator[Stack]:
    nginx = require_binary("nginx", "nginx")
    workdir = tmp_path_factory.mktemp("web-stack")
    gunicorn_port, http_port, https_port = free_port(), free_port(), free_port()
    env = production_env(workdir, memcached_servers, gunicorn_port)
    python = str(REPO_ROOT / ".venv" / "bin" / "python")
    python = python if Path(python).exists() else sys.executable

    subprocess.run([python, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=REPO_ROOT, env=env,
                   check=True, timeout=120)
    cert, key = self_signed_cert(workdir)
    site = render_site(workdir, http_port, https_port, gunicorn_port, workdir / "static", cert, key)
    conf = workdir / "nginx.conf"
    conf.write_text(nginx_main_conf(workdir, site))

    gunicorn_out = open(workdir / "gunicorn.out", "wb")
    gunicorn = subprocess.Popen(
        [python, "-m", "gunicorn", "-c", str(REPO_ROOT / "deploy" / "gunicorn.conf.py"), "pyscaler.wsgi"],
        cwd=REPO_ROOT, env=env, stdout=gunicorn_out, stderr=subprocess.STDOUT,
    )
    nginx_proc = None
    try:
        wait_for_port("127.0.0.1", gunicorn_port, timeout=60, proc=gunicorn, what="gunicorn")
        wait_for_django(gunicorn_port, gunicorn)
        nginx_proc = subprocess.Popen([nginx, "-p", str(workdir), "-c", str(conf), "-g", "daemon off;"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port("127.0.0.1", https_port, timeout=30, proc=nginx_proc, what="nginx")
        tls = ssl.create_default_context(cafile=str(cert))
        tls.check_hostname = False  # we connect to 127.0.0.1; the certificate names localhost
        yield Stack(workdir, http_port, https_port, workdir / "static", workdir / "gunicorn-access.log", tls)
    finally:
        stop_process(nginx_proc)
        stop_process(gunicorn, timeout=35)
        gunicorn_out.close()


def test_nginx_accepts_the_rendered_site(stack: Stack):
    result = subprocess.run(["nginx", "-t", "-p", str(stack.workdir), "-c", str(stack.workdir / "nginx.conf")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr


def test_debians_own_nginx_conf_accepts_the_site_in_sites_enabled(stack: Stack, tmp_path: Path):
    """Production installs the site into Debian's /etc/nginx/nginx.conf (the
    Puppet module: sites-enabled); its http-level settings must not clash."""
    debian = Path("/etc/nginx/nginx.conf").read_text()
    replacements = {
        r"^pid .*;$": f"pid {tmp_path}/nginx.pid;",
        r"^error_log .*;$": f"error_log {tmp_path}/error.log;",
        r"^(\s*)access_log .*;$": rf"\g<1>access_log {tmp_path}/access.log;",
        r"^(\s*)include /etc/nginx/sites-enabled/\*;$": rf"\g<1>include {stack.workdir / 'pyscaler.conf'};",
    }
    for pattern, replacement in replacements.items():
        debian, count = re.subn(pattern, replacement, debian, flags=re.M)
        assert count == 1, f"Debian's nginx.conf changed: no line matches {pattern}"
    conf = tmp_path / "nginx.conf"
    conf.write_text(debian)
    result = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr and "[emerg]" not in result.stderr, result.stderr


def test_the_login_page_comes_through_nginx_over_https(stack: Stack):
    response = stack.https("GET", "/admin/login/")
    # SECURE_SSL_REDIRECT is on and ALLOWED_HOSTS is only "localhost": a 200
    # means nginx passed X-Forwarded-Proto (no redirect loop) and the client's
    # Host header (no 400).
    assert response.status == 200, response.body[:500]
    page = response.body.decode()
    assert "PyScaler administration" in page and 'name="csrfmiddlewaretoken"' in page
    assert "Secure" in response.getheader("Set-Cookie", "")
    assert response.getheader("Strict-Transport-Security", "").startswith("max-age=3600")
    logged = stack.wait_logged('"GET /admin/login/ HTTP/1.0" 200')
    assert logged, stack.gunicorn_lines()
    # gunicorn's access log starts with X-Forwarded-For, then the peer (nginx).
    assert logged[-1].startswith(f"{CLIENT_ADDRESS} 127.0.0.1 "), logged[-1]


def test_a_static_file_is_served_by_nginx_not_gunicorn(stack: Stack):
    before = len(stack.gunicorn_lines())
    response = stack.https("GET", "/static/admin/css/base.css")
    assert response.status == 200
    assert response.body == (stack.static_root / "admin" / "css" / "base.css").read_bytes()
    assert response.getheader("Content-Type", "").startswith("text/css")
    assert "public" in response.getheader("Cache-Control", "")
    # whitenoise's .gz copies are sent as they are (gzip_static).
    zipped = stack.https("GET", "/static/admin/css/base.css", headers={"Accept-Encoding": "gzip"})
    assert zipped.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(zipped.body) == response.body
    assert stack.https("GET", "/static/admin/css/no-such-file.css").status == 404
    assert not [line for line in stack.gunicorn_lines()[before:] if "/static/" in line]


def test_plain_http_redirects_to_https_but_serves_healthz(stack: Stack):
    response = stack.http("/admin/login/")
    assert response.status == 301
    assert response.getheader("Location") == "https://localhost/admin/login/"
    health = stack.http("/healthz")
    assert health.status == 200, health.body
    assert json.loads(health.body)["checks"] == {"database": "ok", "broker": "ok", "memcached": "ok"}


def test_an_oversized_upload_is_refused_by_nginx(stack: Stack):
    before = len(stack.gunicorn_lines())
    response = stack.https("POST", "/admin/login/", body=b"x" * (11 * 1024 * 1024),
                           headers={"Content-Type": "application/octet-stream"})
    assert response.status == 413
    # The upload never reached gunicorn. (Only this request's line counts: an
    # earlier test's /healthz line may reach the access log late.)
    assert not [line for line in stack.gunicorn_lines()[before:] if "/admin/login/" in line]


def test_pages_link_hashed_static_files_that_nginx_serves(stack: Stack):
    """collectstatic's manifest storage: pages name content-hashed files, which
    nginx may let browsers cache for long."""
    page = stack.https("GET", "/admin/login/").body.decode()
    hashed = re.findall(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page)
    assert hashed, page[:2000]
    response = stack.https("GET", hashed[0])
    assert response.status == 200 and response.getheader("Expires")


def test_the_docker_healthcheck_script_passes_only_when_healthz_does(stack: Stack):
    """docker/healthcheck.py, run as the image's HEALTHCHECK runs it, against
    this gunicorn (SECURE_SSL_REDIRECT on, ALLOWED_HOSTS=localhost)."""
    gunicorn_bind = next(line for line in (stack.workdir / "pyscaler.conf").read_text().splitlines()
                         if line.strip().startswith("server 127.0.0.1:")).split()[1]
    script = str(REPO_ROOT / "docker" / "healthcheck.py")
    env = {"PATH": os.environ["PATH"], "GUNICORN_BIND": gunicorn_bind, "ALLOWED_HOSTS": "localhost,127.0.0.1"}
    ok = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert '"status": "ok"' in ok.stdout
    wrong_host = subprocess.run([sys.executable, script], env={**env, "ALLOWED_HOSTS": "elsewhere.example"},
                                capture_output=True, text=True, timeout=30)
    assert wrong_host.returncode == 1 and "healthz: 400" in wrong_host.stdout
    closed = subprocess.run([sys.executable, script], env={**env, "GUNICORN_BIND": f"127.0.0.1:{free_port()}"},
                            capture_output=True, text=True, timeout=30)
    assert closed.returncode == 1 and "unreachable" in closed.stdout
