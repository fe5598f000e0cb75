"""Field validators whose messages name the offending value, so an admin sees
what to fix without reading logs."""
from __future__ import annotations

import ipaddress
import re

from django.core.exceptions import ValidationError

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def _fail(message: str, value) -> None:
    # A code of our own: with "invalid", ModelForm would replace the message
    # by the form field's generic one ("Enter a valid JSON.").
    raise ValidationError(message, params={"value": value}, code="bad_value")


def validate_host(value: str) -> None:
    try:
        ipaddress.ip_address(value)
        return
    except ValueError:
        pass
    if not _HOSTNAME.match(value or ""):
        _fail("%(value)r is neither an IP address nor a host name.", value)


def validate_node_name(value: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}", value or ""):
        _fail("%(value)r: use letters, digits, '.', '_' and '-' (starting with a letter or digit).", value)


def validate_absolute_path(value: str) -> None:
    if value and not value.startswith("/"):
        _fail("%(value)r is not an absolute path.", value)


def validate_aws_region(value: str) -> None:
    if value and not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", value):
        _fail("%(value)r is not an AWS region name such as eu-west-1.", value)


def validate_ami_id(value: str) -> None:
    if value and not re.fullmatch(r"ami-[0-9a-f]{8,17}", value):
        _fail("%(value)r is not an AMI id (ami- followed by 8 or 17 hex digits).", value)


def validate_subnet_id(value: str) -> None:
    if value and not re.fullmatch(r"subnet-[0-9a-f]{8,17}", value):
        _fail("%(value)r is not a subnet id (subnet-…).", value)


def validate_instance_id(value: str) -> None:
    if value and not re.fullmatch(r"i-[0-9a-f]{8,17}", value):
        _fail("%(value)r is not an EC2 instance id (i-…).", value)


def validate_security_group_ids(value: str) -> None:
    for item in (s.strip() for s in (value or "").split(",")):
        if item and not re.fullmatch(r"sg-[0-9a-f]{8,17}", item):
            _fail("%(value)r is not a security group id (sg-…).", item)


def validate_target_group_arn(value: str) -> None:
    if value and not re.fullmatch(
        r"arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]+",
        value,
    ):
        _fail("%(value)r is not an ELBv2 target group ARN.", value)


def validate_elb_name(value: str) -> None:
    if value and not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?", value):
        _fail("%(value)r is not a classic load balancer name (up to 32 letters, digits, '-').", value)


def validate_tags(value) -> None:
    if not isinstance(value, dict):
        _fail("Tags must be a JSON object of string keys and values, not %(value)r.", value)
    for key, val in value.items():
        if not isinstance(val, str) or not key or len(key) > 128 or len(val) > 256:
            _fail("Tag %(value)r: keys of 1-128 and values of up to 256 characters, both strings.", key)
        if key.startswith("aws:") or key.startswith("pyscaler:"):
            _fail("Tag %(value)r: the aws: and pyscaler: prefixes are reserved.", key)
