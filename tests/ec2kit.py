"""Shared set-up of the EC2 action tests on the real moto server: its default
subnet and load balancers, instances launched outside PyScaler, what moto says
about instances, and step contexts. (Clusters and nodes are built by
tests/factories.py: make_ec2_cluster, node_for, nodes_in_moto.)"""
from __future__ import annotations

import itertools
import time
from typing import Any

import boto3

from apps.actions.contract import StepContext
from apps.actions.ec2 import CLUSTER_TAG, STEP_TAG
from apps.control.models import Cluster
from devservers.moto_server import DEFAULT_AMI_ID, MotoServer

_ids = itertools.count(1)
REGION = "us-east-1"


def aws(moto: MotoServer, service: str):
    return boto3.client(service, endpoint_url=moto.endpoint_url, region_name=REGION)


def default_subnet(moto: MotoServer) -> tuple[str, str]:
    """(vpc id, subnet id) of moto's default VPC."""
    ec2 = aws(moto, "ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"][0]["SubnetId"]
    return vpc, subnet


def make_target_group(moto: MotoServer, name: str = "web") -> str:
    vpc, _ = default_subnet(moto)
    return aws(moto, "elbv2").create_target_group(
        Name=name, Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]


def make_classic_elb(moto: MotoServer, name: str = "web-classic") -> str:
    aws(moto, "elb").create_load_balancer(
        LoadBalancerName=name,
        Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080}],
        AvailabilityZones=[f"{REGION}a"],
    )
    return name


def context(cluster: Cluster, step_id: str | None = None, **fields: Any) -> StepContext:
    return StepContext(
        cluster=cluster,
        step_id=step_id or f"pyscaler-step-test-{next(_ids)}-{time.time_ns()}",
        deadline=time.monotonic() + fields.pop("timeout_s", 60),
        **fields,
    )


def instances(moto: MotoServer, *, states: tuple[str, ...] = ("pending", "running"),
              **tags: str) -> list[dict[str, Any]]:
    """moto's instances in the given states, filtered by tags (``step``/``cluster``
    for PyScaler's own tags)."""
    names = {"step": STEP_TAG, "cluster": CLUSTER_TAG}
    filters = [{"Name": "instance-state-name", "Values": list(states)}]
    filters += [{"Name": f"tag:{names.get(k, k)}", "Values": [v]} for k, v in tags.items()]
    found = []
    for r in aws(moto, "ec2").describe_instances(Filters=filters)["Reservations"]:
        found.extend(r["Instances"])
    return found


def state_of(moto: MotoServer, instance_id: str) -> str:
    r = aws(moto, "ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return r[0]["Instances"][0]["State"]["Name"]


def target_ids(moto: MotoServer, target_group_arn: str) -> set[str]:
    health = aws(moto, "elbv2").describe_target_health(TargetGroupArn=target_group_arn)
    return {d["Target"]["Id"] for d in health["TargetHealthDescriptions"]}


def classic_ids(moto: MotoServer, name: str) -> set[str]:
    lb = aws(moto, "elb").describe_load_balancers(LoadBalancerNames=[name])["LoadBalancerDescriptions"][0]
    return {i["InstanceId"] for i in lb["Instances"]}


def launch_foreign(moto: MotoServer, count: int = 1) -> list[str]:
    """Instances launched outside PyScaler (no PyScaler tags)."""
    made = aws(moto, "ec2").run_instances(ImageId=DEFAULT_AMI_ID, InstanceType="t3.micro",
                                          MinCount=count, MaxCount=count)
    return [i["InstanceId"] for i in made["Instances"]]
