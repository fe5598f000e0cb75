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

    def registered(self) -> set[str]:
        with aws.aws_errors(f"listing the targets of {self.label}"):
            described = self.client.describe_target_health(TargetGroupArn=self.arn)
        return {d["Target"]["Id"] for d in described["TargetHealthDescriptions"]}

    def deregister(self, instance_ids: list[str], budget_s: float) -> str:
        """Deregister, then wait (bounded) for the target group's deregistration
        delay, so in-flight requests finish before the instance goes.

        Only targets still registered are deregistered: a redelivered step
        (its worker died after deregistering) must not fail on the target
        the first delivery already took out (ELBv2 answers InvalidTarget)."""
        doing = f"deregistering {', '.join(instance_ids)} from {self.label}"
        present = [i for i in instance_ids if i in self.registered()]
        if not present:
            return f"not registered with {self.label} (already deregistered)"
        targets = [{"Id": i} for i in present]
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

    def registered(self) -> set[str]:
        with aws.aws_errors(f"listing the instances of {self.label}"):
            (described,) = self.client.describe_load_balancers(
                LoadBalancerNames=[self.name])["LoadBalancerDescriptions"]
        return {i["InstanceId"] for i in described["Instances"]}

    def deregister(self, instance_ids: list[str], budget_s: float) -> str:
        # A classic ELB drains on its own (connection draining) once the call
        # returns. Only instances still registered: see TargetGroup.deregister.
        present = [i for i in instance_ids if i in self.registered()]
        if not present:
            return f"not registered with {self.label} (already deregistered)"
        with aws.aws_errors(f"deregistering {', '.join(present)} from {self.label}"):
            self.client.deregister_instances_from_load_balancer(
                LoadBalancerName=self.name, Instances=[{"InstanceId": i} for i in present]
            )
        return f"deregistered from {self.label}"


def for_cluster(cluster) -> LoadBalancer | None:
    if cluster.target_group_arn:
        return TargetGroup(cluster)
    if cluster.classic_elb_name:
        return ClassicElb(cluster)
    return None
