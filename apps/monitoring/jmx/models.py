from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.monitoring.counters import CounterBase
from pyscaler.secretrefs import validate_secret_ref

from .objectname import ObjectNameError, parse_object_name


def validate_object_name(value: str) -> None:
    try:
        parse_object_name(value)
    except ObjectNameError as exc:
        raise ValidationError(
            "%(value)r is not a valid MBean object name: %(reason)s.",
            params={"value": value, "reason": exc},
            code="invalid_object_name",
        ) from None


class JVM(models.Model):
    """A JVM that runs on every node of a cluster and exposes JMX remote."""

    cluster = models.ForeignKey("control.Cluster", on_delete=models.PROTECT, related_name="jvms")
    name = models.CharField(max_length=100, help_text="e.g. 'tomcat'.")
    jmx_port = models.PositiveIntegerField(
        "JMX port", validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    username = models.CharField(max_length=100, blank=True)
    password_ref = models.CharField(
        "password reference",
        max_length=200,
        blank=True,
        validators=[validate_secret_ref],
        help_text="env:NAME or file:/path holding the JMX password; never the password itself.",
    )
    tls = models.BooleanField(
        "TLS",
        default=False,
        help_text="JMX and its RMI registry speak TLS (the jvm_node role always sets them up so); PyScaler "
                  "trusts the certificate OSConfiguration read back from the node.",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "JVM"
        ordering = ["cluster__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="jvm_unique_name_per_cluster"),
            models.UniqueConstraint(fields=["cluster", "jmx_port"], name="jvm_unique_port_per_cluster"),
        ]

    def __str__(self) -> str:
        return f"{self.cluster}/{self.name}"

    def clean(self) -> None:
        if self.password_ref and not self.username:
            raise ValidationError({"username": "A password reference needs a username."})


class JMXCounter(CounterBase):
    """An MBean attribute (or one key of a composite attribute) read from a JVM."""

    jvm = models.ForeignKey(JVM, on_delete=models.PROTECT, related_name="counters", verbose_name="JVM")
    mbean = models.CharField(
        "MBean",
        max_length=500,
        validators=[validate_object_name],
        help_text="Object name, e.g. java.lang:type=Memory",
    )
    attribute = models.CharField(max_length=200, help_text="e.g. HeapMemoryUsage")
    composite_key = models.CharField(
        max_length=200, blank=True, help_text="Key of a composite value, e.g. 'used'."
    )

    class Meta:
        verbose_name = "JMX counter"
        ordering = ["jvm__cluster__name", "jvm__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["jvm", "name"], name="jmxcounter_unique_name_per_jvm")
        ]

    def __str__(self) -> str:
        return f"{self.jvm}/{self.name}"

    @property
    def cluster_id(self):
        return self.jvm.cluster_id if self.jvm_id else None

    def clean(self) -> None:
        if self.attribute and not self.attribute.replace("_", "").replace("-", "").isalnum():
            raise ValidationError({"attribute": f"{self.attribute!r} is not an attribute name."})
