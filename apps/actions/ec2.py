"""EC2 instances as DeployEc2Node and RemoveEc2Node see them.

Launching is made idempotent by tags, not by ClientToken alone: moto (the
test EC2) ignores ClientToken, and even real AWS forgets a token after some
hours. Every instance a step launches carries the step's id as a tag, and
the step looks its instances up before launching any.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from . import aws

STEP_TAG = "pyscaler:step-id"
CLUSTER_TAG = "pyscaler:cluster"
LIVE_STATES = ("pending", "running")


@dataclass(frozen=True)
class Instance:
    id: str
    state: str
    private_ip: str = ""
    private_dns: str = ""
    public_dns: str = ""

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Instance:
        return cls(
            id=data["InstanceId"],
            state=data.get("State", {}).get("Name", ""),
            private_ip=data.get("PrivateIpAddress") or "",
            private_dns=data.get("PrivateDnsName") or "",
            public_dns=data.get("PublicDnsName") or "",
        )

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def address(self) -> str:
        """Where PyScaler reaches the node: inside the VPC, as workers usually are."""
        return self.private_ip or self.private_dns or self.public_dns


def _describe(ec2, **kwargs) -> list[Instance]:
    found = []
    for page in ec2.get_paginator("describe_instances").paginate(**kwargs):
        for reservation in page["Reservations"]:
            found.extend(Instance.from_api(i) for i in reservation["Instances"])
    return sorted(found, key=lambda i: i.id)


def step_instances(ec2, cluster_name: str, step_id: str) -> list[Instance]:
    """Every instance (in any state) that a step of this id launched."""
    with aws.aws_errors("looking up instances this step launched before"):
        return _describe(
            ec2,
            Filters=[
                {"Name": f"tag:{STEP_TAG}", "Values": [step_id]},
                {"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster_name]},
            ],
        )


def describe(ec2, instance_ids: list[str]) -> list[Instance]:
    with aws.aws_errors(f"describing instances {', '.join(instance_ids)}"):
        return _describe(ec2, InstanceIds=instance_ids)


def client_token(step_id: str, generation: int) -> str:
    """ClientToken for real AWS: stable across redeliveries of one attempt,
    new after a failed attempt terminated its instances (``generation`` is how
    many instances the step had launched before), at most 64 ASCII chars."""
    token = f"{step_id}-{generation}"
    if len(token) > 64 or not token.isascii():
        token = hashlib.sha256(token.encode()).hexdigest()[:64]
    return token


def launch(ec2, cluster, count: int, step_id: str, token: str, instance_type: str | None = None) -> list[Instance]:
    """Launch exactly ``count`` instances with the cluster's launch settings,
    tagged with the step and cluster. All or nothing (MinCount = MaxCount):
    on a capacity error the step fails and can be retried, rather than
    silently growing the cluster by less than it reserved."""
    tags = [{"Key": str(k), "Value": str(v)} for k, v in (cluster.ec2_tags or {}).items()]
    tags += [
        {"Key": "Name", "Value": f"pyscaler-{cluster.name}"},
        {"Key": CLUSTER_TAG, "Value": cluster.name},
        {"Key": STEP_TAG, "Value": step_id},
    ]
    request: dict[str, Any] = {
        "ImageId": cluster.ec2_ami,
        "InstanceType": instance_type or cluster.ec2_instance_type,
        "MinCount": count,
        "MaxCount": count,
        "ClientToken": token,
        "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}],
    }
    if cluster.ec2_subnet_id:
        request["SubnetId"] = cluster.ec2_subnet_id
    if cluster.security_group_id_list:
        request["SecurityGroupIds"] = cluster.security_group_id_list
    if cluster.ec2_key_name:
        request["KeyName"] = cluster.ec2_key_name
    with aws.aws_errors(f"launching {count} instance(s) of {request['ImageId']} ({request['InstanceType']})"):
        response = ec2.run_instances(**request)
    return [Instance.from_api(i) for i in response["Instances"]]


def wait(ec2, waiter: str, instance_ids: list[str], budget_s: float, doing: str) -> None:
    """Wait (bounded by ``budget_s``) for a state: boto3's waiter polls and
    fails at once if an instance reaches a state it can never leave."""
    with aws.aws_errors(doing):
        ec2.get_waiter(waiter).wait(InstanceIds=instance_ids, WaiterConfig=aws.waiter_config(budget_s))


def terminate(ec2, instance_ids: list[str]) -> None:
    with aws.aws_errors(f"terminating {', '.join(instance_ids)}"):
        ec2.terminate_instances(InstanceIds=instance_ids)
