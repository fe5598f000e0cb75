"""Puppet applied to a node over SSH: what OSConfiguration does.

The Puppet directory (settings.PUPPET_DIR) is copied to a fresh directory on
the node over SFTP, inside a work directory private to the SSH user
(apps/actions/puppet_workdir.py), and applied there with ``puppet apply
--detailed-exitcodes``; every directory Puppet writes to (confdir, vardir,
logdir, rundir, codedir) lives in that run directory, so a run never reads or
changes the node's own Puppet set-up, and the directory is removed afterwards
(file backups go to a persistent clientbucket beside it).

Facts: PyScaler's facts (``pyscaler_*``) reach Puppet as FACTER_ variables.
With settings.PUPPET_FACTER_BLOCKLIST set, facter runs first with a facter.conf
blocking those fact groups and Puppet reads the facts it wrote (the json facts
terminus): Puppet itself has no option pointing its facter at another
facter.conf. With settings.PUPPET_SEAL_NETWORK, facter and Puppet run in a
loopback-only network namespace (see apps/actions/puppet_command.py); the
manifest learns the node's own namespace from the ``pyscaler_service_netns``
fact, so services it starts still serve on the node's network.

Secrets (the JMX password and access files of jmx_files) are never facts:
facts are environment variables of Puppet's processes and show up in its
output. They go over SFTP into a private directory of the run (0700, files
0600) that the ``pyscaler_jmx_secrets_dir`` fact names, and are removed with
the run directory. After a successful run, trust_jvm_certificate reads the
certificate the role exported back over the same (host-key verified) SSH
connection, and the JMX workers trust it (apps/monitoring/jmx/trust.py).
"""
from __future__ import annotations

import json
import posixpath
import re
import shlex
import stat
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import paramiko
from django.conf import settings

from apps.monitoring.jmx import trust
from pyscaler.secretrefs import SecretUnavailable, resolve_secret_ref

from . import puppet_workdir
from .contract import ActionError
from .puppet_command import PuppetDirs, apply_command, sealed, shell_command
from .ssh_exec import run_bounded

#: Exit statuses of --detailed-exitcodes that mean success.
SUCCESS_CODES = {0: "no changes", 2: "changes applied"}
#: Bytes of Puppet's output kept (the tail).
OUTPUT_LIMIT = 256 * 1024
#: Names never copied from the Puppet directory.
SKIP_NAMES = {".git", "__pycache__", ".DS_Store"}
#: The JMX files jmx_files makes, and the fact naming the directory they are copied to.
SECRET_FILES = ("jmxremote.password", "jmxremote.access")
SECRETS_FACT = "pyscaler_jmx_secrets_dir"
#: Where the jvm_node role lives unless the pyscaler_jvm_base_dir fact says
#: otherwise, and the certificate it exports there (relative).
DEFAULT_JVM_BASE_DIR = "/opt/pyscaler-jvm"
CERTIFICATE_FILE = "tls/jmx-cert.pem"

_RESOURCE = re.compile(r"((?:[A-Z][A-Za-z0-9_]*::)*[A-Z][A-Za-z0-9_]*\[[^\]]*\])")
_EVENT = re.compile(r"^(Notice|Error|Warning): (/Stage\[[^\]]*\]/\S.*?)(?:: (.*))?$")


@dataclass
class PuppetRun:
    exit_code: int | None  # None: the deadline passed first
    output: str
    timed_out: bool
    changed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.exit_code in SUCCESS_CODES


def parse_output(text: str) -> tuple[list[str], list[str], list[str]]:
    """Changed resources, failed resources and error lines from Puppet's
    console output (``--color=false``), in order, without repeats."""
    changed: list[str] = []
    failed: list[str] = []
    errors: list[str] = []
    for line in text.splitlines():
        match = _EVENT.match(line.strip())
        if match:
            level, path = match.group(1), match.group(2)
            refs = [r for r in _RESOURCE.findall(path) if not r.startswith("Stage[")]
            if refs:
                target = changed if level == "Notice" else failed if level == "Error" else None
                if target is not None and refs[-1] not in target:
                    target.append(refs[-1])
        if line.startswith("Error: "):
            errors.append(line[len("Error: "):].strip())
    return changed, failed, errors


def certname(node_name: str) -> str:
    """Puppet's node name: lower-case letters, digits, '.', '-' and '_'."""
    return re.sub(r"[^a-z0-9._-]", "-", node_name.lower()) or "pyscaler-node"


def _jvm_of(cluster, jvm_name: str | None):
    jvms = cluster.jvms.order_by("name")
    jvm = jvms.filter(name=jvm_name).first() if jvm_name else jvms.first()
    if jvm_name and jvm is None:
        raise ActionError(f"cluster {cluster.name!r} has no JVM named {jvm_name!r}")
    return jvm


def facts_for(node, cluster, jvm_name: str | None = None, extra: dict | None = None) -> dict[str, str]:
    """The pyscaler_* facts a manifest can use; ``extra`` (the action's
    ``facts`` parameter) overrides any of them. No secret is ever a fact:
    facts are environment variables of Puppet's processes and appear in its
    logs; the JMX password travels as a file (jmx_files)."""
    facts: dict[str, str] = {
        "pyscaler_cluster": cluster.name,
        "pyscaler_node": node.name,
        # JMX clients reconnect to the RMI host name: the address PyScaler uses.
        "pyscaler_rmi_hostname": node.address,
        # ... and the JMX agent listens there only, not on every address.
        "pyscaler_jmx_host": node.address,
    }
    jvm = _jvm_of(cluster, jvm_name)
    if jvm is not None:
        facts["pyscaler_jvm"] = jvm.name
        facts["pyscaler_jmx_port"] = str(jvm.jmx_port)
        facts["pyscaler_jmx_tls"] = "true" if jvm.tls else "false"
    for key, value in (extra or {}).items():
        facts[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return facts


def jmx_files(cluster, jvm_name: str | None = None) -> dict[str, str]:
    """The JMX password and access files for the JVM record (empty without
    credentials), resolved here on the worker. apply() copies them over SFTP
    into a private directory of the run, and the role installs them readable
    by the JVM's user only."""
    jvm = _jvm_of(cluster, jvm_name)
    if jvm is None or not (jvm.username and jvm.password_ref):
        return {}
    try:
        password = resolve_secret_ref(jvm.password_ref)
    except SecretUnavailable as exc:
        raise ActionError(f"JMX password of JVM {jvm.name}: {exc}", retryable=True) from None
    if not re.fullmatch(r"[A-Za-z0-9_.@-]+", jvm.username):
        raise ActionError(f"JMX username {jvm.username!r} of JVM {jvm.name}: letters, digits and _.@- only")
    if not password or any(c.isspace() for c in password):
        # The JMX agent splits each line of the file at white space.
        raise ActionError(f"JMX password of JVM {jvm.name} is empty or contains white space")
    return {
        SECRET_FILES[0]: f"{jvm.username} {password}\n",
        SECRET_FILES[1]: f"{jvm.username} readonly\n",
    }


def trust_jvm_certificate(client: paramiko.SSHClient, node, cluster, jvm_name: str | None,
                          facts: dict[str, str], log=lambda line: None) -> str | None:
    """After the role ran: read the certificate it exported (public) back
    over this SSH connection, whose host key was verified, and have the
    workers trust it for this JVM on this node (apps/monitoring/jmx/trust.py).
    Returns the path recorded, or None (no TLS, or no certificate exported)."""
    jvm = _jvm_of(cluster, jvm_name)
    if jvm is None or not jvm.tls:
        return None
    remote = posixpath.join(facts.get("pyscaler_jvm_base_dir") or DEFAULT_JVM_BASE_DIR, CERTIFICATE_FILE)
    try:
        with client.open_sftp() as sftp, sftp.open(remote, "r") as fh:
            pem = fh.read(64 * 1024).decode("ascii", "replace")
    except FileNotFoundError:
        log(f"no JMX certificate at {remote} on {node.name}: nothing new to trust")
        return None
    except (OSError, paramiko.SSHException) as exc:
        raise ActionError(f"reading the JMX certificate {remote} from {node.name} failed: {exc}",
                          retryable=True) from None
    try:
        path = trust.record_certificate(jvm, node, pem)
    except trust.TrustError as exc:
        raise ActionError(f"{remote} on {node.name}: {exc}") from None
    log(f"trusting the JMX certificate of JVM {jvm.name} on {node.name} (recorded in {path})")
    return str(path)


def facter_conf(blocklist: list[str]) -> str:
    """A facter.conf (HOCON) blocking the given fact groups."""
    return "facts : {\n  blocklist : %s\n}\n" % json.dumps(list(blocklist))


# ---------------------------------------------------------------------------
# Copying
# ---------------------------------------------------------------------------


def _sftp_makedirs(sftp: paramiko.SFTPClient, path: str) -> None:
    parts = PurePosixPath(path).parts
    current = ""
    for part in parts:
        current = posixpath.join(current, part) if current else part
        try:
            sftp.stat(current)
        except FileNotFoundError:
            sftp.mkdir(current)


def upload_tree(sftp: paramiko.SFTPClient, local: Path, remote: str) -> int:
    """Copy a directory tree, keeping file modes; returns the number of files."""
    count = 0
    _sftp_makedirs(sftp, remote)
    for path in sorted(local.rglob("*")):
        rel = path.relative_to(local)
        if any(part in SKIP_NAMES for part in rel.parts):
            continue
        target = posixpath.join(remote, *rel.parts)
        if path.is_dir():
            sftp.mkdir(target)
        elif path.is_file():
            sftp.put(str(path), target)
            sftp.chmod(target, stat.S_IMODE(path.stat().st_mode))
            count += 1
    return count


# ---------------------------------------------------------------------------
# The scripts run on the node
# ---------------------------------------------------------------------------


def apply_script(run_dir: str, manifest: str, node_certname: str, blocklist: list[str],
                 clientbucket: str) -> str:
    """facter (if fact groups are blocked) then ``puppet apply``; run inside
    the sealed namespace when sealing is on."""
    dirs = PuppetDirs(PurePosixPath(run_dir))  # type: ignore[arg-type]
    code = f"{run_dir}/code"
    extra = ["--certname", node_certname,
             "--clientbucketdir", clientbucket]
    lines = ["set -u", f"cd {shlex.quote(run_dir)} || exit 70",
             "mkdir -p conf var log run var/client_data/facts"]
    if blocklist:
        facts_file = f"var/client_data/facts/{node_certname}.json"
        facter = shlex.join(shlex.split(settings.PUPPET_FACTER_COMMAND))
        lines += [
            # Module facts, as Puppet would load them itself.
            "set --",
            f"for d in {shlex.quote(code)}/modules/*/lib/facter; do "
            '[ -d "$d" ] && set -- "$@" --custom-dir "$d"; done',
            f"for d in {shlex.quote(code)}/modules/*/facts.d; do "
            '[ -d "$d" ] && set -- "$@" --external-dir "$d"; done',
            # facter exits 1 when any fact failed (e.g. an unreadable /proc file
            # in a container): judge by the output, not the status.
            f"{{ printf '{{\"name\":\"%s\",\"values\":' {shlex.quote(node_certname)}; "
            f"{facter} --config {shlex.quote(run_dir)}/facter.conf --json --show-legacy \"$@\"; "
            f"printf '}}'; }} > {facts_file} 2> facter.log",
            f"if ! grep -q '\"os\"' {facts_file}; then",
            "  echo 'Error: facter produced no facts:'; tail -n 20 facter.log; exit 70",
            "fi",
        ]
        extra += ["--facts_terminus", "json"]
    # PUPPET_COMMAND may be several words, e.g. "sudo -n puppet".
    *prefix, puppet = shlex.split(settings.PUPPET_COMMAND)
    command = apply_command(
        posixpath.join(code, manifest), dirs, modulepath=[f"{code}/modules"], puppet=puppet, extra=extra
    )
    lines.append("exec " + shell_command([*prefix, *command]))
    return "\n".join(lines) + "\n"


def outer_script(run_dir: str, facts: dict[str, str], seal: bool, as_root: bool) -> str:
    """Facts into the environment, the (sealed) apply script, clean-up."""
    lines = ["set -u"]
    for key, value in sorted(facts.items()):
        lines.append(f"export FACTER_{key}={shlex.quote(value)}")
    inner = ["sh", f"{run_dir}/apply.sh"]
    if seal:
        # This shell stays alive until the apply ends (commands follow), so its
        # namespace file stays valid for services the manifest starts.
        lines.append('export FACTER_pyscaler_service_netns="/proc/$$/ns/net"')
        lines.append(shell_command(sealed(inner, as_root=as_root)))
    else:
        lines.append(shell_command(inner))
    lines += ["rc=$?", f"rm -rf {shlex.quote(run_dir)}", "exit $rc"]
    return "\n".join(lines) + "\n"


def upload_secret_files(sftp: paramiko.SFTPClient, directory: str, files: dict[str, str]) -> None:
    """Write ``files`` into a new directory of mode 0700, each file 0600
    before any content is written: only the SSH user (and root) ever can
    read them, and the run's clean-up removes them with the run directory."""
    sftp.mkdir(directory, mode=0o700)
    sftp.chmod(directory, 0o700)  # whatever the server's umask made of it
    for name, content in files.items():
        with sftp.open(posixpath.join(directory, name), "w") as fh:
            fh.chmod(0o600)
            fh.write(content)


def apply(client: paramiko.SSHClient, user: str, manifest: str, facts: dict[str, str], deadline: float,
          node_name: str, log=lambda line: None, files: dict[str, str] | None = None) -> PuppetRun:
    """Copy the Puppet directory to the node and apply ``manifest`` there,
    bounded by ``deadline``. ``files`` (secrets such as jmx_files) go over
    SFTP into a private directory of the run, named by the SECRETS_FACT fact."""
    started = time.monotonic()
    local = Path(settings.PUPPET_DIR)
    blocklist = list(settings.PUPPET_FACTER_BLOCKLIST)
    try:
        sftp = client.open_sftp()
    except (paramiko.SSHException, OSError) as exc:
        raise ActionError(f"cannot open SFTP to copy the Puppet directory: {exc}", retryable=True) from None
    try:
        sftp.get_channel().settimeout(max(1.0, deadline - time.monotonic()))
        # Puppet runs what is copied here: a directory of this user only.
        base = puppet_workdir.resolve(sftp, settings.PUPPET_REMOTE_DIR)
        puppet_workdir.ensure_private(client, sftp, base, user, deadline)
        run_dir = posixpath.join(base, "runs", f"{int(time.time())}-{uuid.uuid4().hex[:8]}")
        copied = upload_tree(sftp, local, f"{run_dir}/code")
        if files:
            upload_secret_files(sftp, f"{run_dir}/secrets", files)
            facts = {**facts, SECRETS_FACT: f"{run_dir}/secrets"}
        with sftp.open(f"{run_dir}/apply.sh", "w") as fh:
            fh.write(apply_script(run_dir, manifest, certname(node_name), blocklist,
                                  posixpath.join(base, "clientbucket")))
        if blocklist:
            with sftp.open(f"{run_dir}/facter.conf", "w") as fh:
                fh.write(facter_conf(blocklist))
        with sftp.open(f"{run_dir}/run.sh", "w") as fh:
            fh.write(outer_script(run_dir, facts, settings.PUPPET_SEAL_NETWORK, as_root=user == "root"))
    except (OSError, paramiko.SSHException) as exc:
        raise ActionError(f"copying the Puppet directory to the node failed: {exc}", retryable=True) from None
    finally:
        sftp.close()
    log(f"copied {copied} file(s) of {local} to {run_dir}/code; applying {manifest}"
        + (" sealed in a loopback-only network namespace" if settings.PUPPET_SEAL_NETWORK else ""))
    result = run_bounded(client, f"sh {shlex.quote(run_dir)}/run.sh", deadline, OUTPUT_LIMIT)
    changed, failed, errors = parse_output(result.output)
    return PuppetRun(
        exit_code=None if result.timed_out else result.exit_status,
        output=result.output,
        timed_out=result.timed_out,
        changed=changed,
        failed=failed,
        errors=errors,
        elapsed_s=time.monotonic() - started,
    )
