from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.monitoring.counters import CounterBase


class SSHCounter(CounterBase):
    """A shell command run on every node of a cluster; its output is one number."""

    cluster = models.ForeignKey("control.Cluster", on_delete=models.PROTECT, related_name="ssh_counters")
    command = models.TextField(
        help_text="Run by /bin/sh (SSH_COLLECT_SHELL) in the SSH user's login environment; its standard "
                  "output must be exactly one number.",
    )

    class Meta:
        verbose_name = "SSH counter"
        ordering = ["cluster__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="sshcounter_unique_name_per_cluster")
        ]

    def __str__(self) -> str:
        return f"{self.cluster}/{self.name}"

    def clean(self) -> None:
        # An empty command already has the field's own "required" message; this
        # one is for a command of blanks saved without a form.
        if self.command and not self.command.strip():
            raise ValidationError({"command": "The command is empty (only blanks)."})
        if self.command and "\x00" in self.command:
            raise ValidationError({"command": "The command contains a NUL character."})


class KnownHostKey(models.Model):
    """A host key PyScaler trusts, recorded by the "tofu" policy on first
    contact. A later, different key is refused; if the change is legitimate
    (the node was rebuilt), an admin deletes this row and the next connection
    records the new key."""

    host = models.CharField(max_length=255, help_text="The node's address as PyScaler connects to it.")
    port = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(65535)])
    key_type = models.CharField(max_length=50, help_text="e.g. ssh-ed25519")
    key_base64 = models.TextField("key (base64)")
    first_seen = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "known host key"
        ordering = ["host", "port", "key_type"]
        constraints = [
            models.UniqueConstraint(fields=["host", "port", "key_type"], name="knownhostkey_unique_per_type")
        ]

    def __str__(self) -> str:
        return f"{self.host_key_name} {self.key_type}"

    @property
    def host_key_name(self) -> str:
        """The name known_hosts files use: ``host`` on port 22, ``[host]:port`` otherwise."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    @property
    def fingerprint(self) -> str:
        """SHA256 fingerprint as OpenSSH prints it (``ssh-keygen -lf``)."""
        import base64
        import hashlib

        digest = hashlib.sha256(base64.b64decode(self.key_base64)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
