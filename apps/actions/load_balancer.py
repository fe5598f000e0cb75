"""The cluster's load balancer: an ELBv2 target group or a classic ELB.

Both expose the same three operations, so the deploy and remove steps do not
care which kind a cluster uses; :func:`for_cluster` picks it from the
cluster's settings (the model allows one of the two, or none).
"""
from __future__ import annotations

from typing import Protocol

from . import aws
from .contract import ActionError


class LoadBalancer(Protocol):
    label: str

    def register(self, instance_ids: list[str]) -> None: ...

    def deregister(self, instance_ids: list[str], budget_s: float) -> str: ...


class TargetGroup:
    def __init__(self, cluster) -> None:
        self.arn = cluster.target_group_arn
        self.client = aws.cluster_client("elbv2", cluster)
        self.label = f"target group {self.arn.split('/')[1]}"

    def register(self, instance_ids: list[str]) -> None:
        with aws.aws_errors(f"registering {', '.join(instance_ids)} with {self.label}"):
            self.client.register_targets(TargetGroupArn=self.arn, Targets=[{"Id": i} for i in instance_ids])

    def deregister(self, instance_ids: list[str], budget_s: float) -> str:
        """Deregister, then wait (bounded) for the target group's deregistration
        delay, so in-flight requests finish before the instance goes."""
        targets = [{"Id": i} for i in instance_ids]
        doing = f"deregistering {', '.join(instance_ids)} from {self.label}"
        with aws.aws_errors(doing):
            self.client.deregister_targets(TargetGroupArn=self.arn, Targets=targets)
        try:
            with aws.aws_errors(doing):
                self.client.get_waiter("target_deregistered").wait(
                    TargetGroupArn=self.arn, Targets=targets, WaiterConfig=aws.waiter_config(budget_s)
                )
        except ActionError as exc:
            if not exc.retryable:
                raise
            # Draining outlived our budget: new requests already go elsewhere,
            # so terminating now only cuts the slowest in-flight ones.
            return f"deregistered from {self.label}; still draining after {budget_s:.0f} s, terminating anyway"
        return f"deregistered from {self.label}"


class ClassicElb:
    def __init__(self, cluster) -> None:
        self.name = cluster.classic_elb_name
        self.client = aws.cluster_client("elb", cluster)
        self.label = f"classic ELB {self.name}"

    def register(self, instance_ids: list[str]) -> None:
        with aws.aws_errors(f"registering {', '.join(instance_ids)} with {self.label}"):
            self.client.register_instances_with_load_balancer(
                LoadBalancerName=self.name, Instances=[{"InstanceId": i} for i in instance_ids]
            )

    def deregister(self, instance_ids: list[str], budget_s: float) -> str:
        # A classic ELB drains on its own (connection draining) once the call returns.
        with aws.aws_errors(f"deregistering {', '.join(instance_ids)} from {self.label}"):
            self.client.deregister_instances_from_load_balancer(
                LoadBalancerName=self.name, Instances=[{"InstanceId": i} for i in instance_ids]
            )
        return f"deregistered from {self.label}"


def for_cluster(cluster) -> LoadBalancer | None:
    if cluster.target_group_arn:
        return TargetGroup(cluster)
    if cluster.classic_elb_name:
        return ClassicElb(cluster)
    return None
