"""The moto harness is moto's real HTTP server in another process: boto3 goes
through signing, HTTP and parsing as against AWS."""
from __future__ import annotations

import boto3
import pytest

from devservers.moto_server import DEFAULT_AMI_ID, MotoServer


def _client(service: str, server: MotoServer):
    return boto3.client(service, endpoint_url=server.endpoint_url, region_name="us-east-1")


def test_it_runs_and_describes_instances_over_http(moto: MotoServer) -> None:
    ec2 = boto3.client("ec2")  # endpoint from AWS_ENDPOINT_URL, set by the fixture
    assert ec2.meta.endpoint_url == moto.endpoint_url
    launched = ec2.run_instances(
        ImageId=DEFAULT_AMI_ID, InstanceType="t3.micro", MinCount=2, MaxCount=2,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "pyscaler:test", "Value": "yes"}]}],
    )
    ids = sorted(i["InstanceId"] for i in launched["Instances"])
    assert len(ids) == 2
    found = ec2.describe_instances(Filters=[{"Name": "tag:pyscaler:test", "Values": ["yes"]}])
    described = sorted(i["InstanceId"] for r in found["Reservations"] for i in r["Instances"])
    assert described == ids


def test_it_starts_each_test_from_an_empty_aws(moto: MotoServer) -> None:
    ec2 = _client("ec2", moto)
    ec2.run_instances(ImageId=DEFAULT_AMI_ID, InstanceType="t3.micro", MinCount=1, MaxCount=1)
    moto.reset()
    assert ec2.describe_instances()["Reservations"] == []


def test_it_creates_a_target_group_and_registers_targets(moto: MotoServer) -> None:
    ec2 = _client("ec2", moto)
    elbv2 = _client("elbv2", moto)
    vpc_id = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]  # moto's default VPC
    instance_id = ec2.run_instances(
        ImageId=DEFAULT_AMI_ID, InstanceType="t3.micro", MinCount=1, MaxCount=1
    )["Instances"][0]["InstanceId"]
    group_arn = elbv2.create_target_group(
        Name="pyscaler-web", Protocol="HTTP", Port=8080, VpcId=vpc_id, TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=group_arn, Targets=[{"Id": instance_id, "Port": 8080}])
    health = elbv2.describe_target_health(TargetGroupArn=group_arn)["TargetHealthDescriptions"]
    assert [h["Target"]["Id"] for h in health] == [instance_id]


def test_it_refuses_an_unknown_target_group(moto: MotoServer) -> None:
    elbv2 = _client("elbv2", moto)
    with pytest.raises(elbv2.exceptions.TargetGroupNotFoundException):
        elbv2.describe_target_health(
            TargetGroupArn=("arn:aws:elasticloadbalancing:us-east-1:123456789012:"
                            "targetgroup/nope/0123456789abcdef")
        )
