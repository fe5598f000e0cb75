"""OSConfiguration: Puppet applied to the chain's target node over SSH.

The work is in apps/actions/puppet_apply.py; this class checks its inputs,
opens the verified SSH connection and turns Puppet's detailed exit codes into
the step's result: 0 (nothing to change) and 2 (changes applied) succeed,
anything else fails the step with Puppet's own error lines.
"""
from __future__ import annotations

import posixpath
from pathlib import Path

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from .. import puppet_apply, ssh_exec
from ..choices import ActionKindChoice
from ..contract import ActionError, ActionKind, StepContext, StepResult
from ..registry import register

DEFAULT_MANIFEST = "manifests/jvm_node.pp"
#: Lines of Puppet's output quoted in a failed step's error.
ERROR_TAIL_LINES = 30


def _relative_path(value: str) -> None:
    if value.startswith("/") or ".." in posixpath.normpath(value).split("/"):
        raise ValidationError(f"{value!r} must be a path inside the Puppet directory")


@register
class OSConfiguration(ActionKind):
    """Puppet applied to the chain's target node over SSH."""

    kind = ActionKindChoice.OS_CONFIGURATION
    label = "OSConfiguration"
    needs_target_node = True

    class Params(forms.Form):
        manifest = forms.CharField(
            required=False,
            validators=[_relative_path],
            help_text="manifest inside the Puppet directory (default manifests/jvm_node.pp)",
        )
        jvm = forms.CharField(
            required=False,
            max_length=100,
            help_text="the cluster's JVM whose JMX port becomes the pyscaler_jmx_port fact "
                      "(default: the cluster's first JVM by name)",
        )
        facts = forms.JSONField(
            required=False, help_text="extra facts (FACTER_ variables) as a JSON object"
        )

        def clean_facts(self):
            facts = self.cleaned_data.get("facts")
            if facts in (None, ""):
                return None
            if not isinstance(facts, dict) or not all(
                isinstance(k, str) and k.isidentifier() and isinstance(v, (str, int, float, bool))
                for k, v in facts.items()
            ):
                raise ValidationError("must be an object of identifier keys and scalar values")
            return facts

    def run(self, ctx: StepContext) -> StepResult:
        node = ctx.target_node
        if node is None:
            raise ActionError("OSConfiguration needs a target node: the breaching node, the operator's "
                              "choice, or the node an earlier DeployEc2Node step created")
        manifest = self.params.get("manifest") or DEFAULT_MANIFEST
        if not (Path(settings.PUPPET_DIR) / manifest).is_file():
            raise ActionError(f"manifest {manifest!r} not found in the Puppet directory {settings.PUPPET_DIR}")
        jvm_name = self.params.get("jvm")
        facts = puppet_apply.facts_for(node, ctx.cluster, jvm_name, self.params.get("facts"))
        secrets = puppet_apply.jmx_files(ctx.cluster, jvm_name)
        target = ssh_exec.SshTarget.for_node(node)
        client = ssh_exec.connect(target, ctx.deadline)
        try:
            run = puppet_apply.apply(client, target.user, manifest, facts, ctx.deadline, node.name, log=ctx.log,
                                     files=secrets)
            if run.succeeded:
                puppet_apply.trust_jvm_certificate(client, node, ctx.cluster, jvm_name, facts, log=ctx.log)
        finally:
            client.close()
        ctx.log(run.output)
        where = f"puppet apply of {manifest} on {node.name}"
        if run.timed_out:
            raise ActionError(f"{where} did not finish before the step's timeout "
                              f"({run.elapsed_s:.0f} s); output tail:\n{_tail(run.output)}", retryable=True)
        changed = ", ".join(run.changed) or "none listed"
        if run.succeeded:
            summary = f"{where}: {puppet_apply.SUCCESS_CODES[run.exit_code]} (exit {run.exit_code})"
            if run.exit_code == 2:
                summary += f"; changed: {changed}"
            return StepResult(
                summary=summary,
                data={"puppet_exit_code": run.exit_code, "puppet_changed": run.changed},
            )
        what = {1: "failed", 4: "failed on some resources", 6: "changed some resources and failed on others"}
        errors = "\n".join(run.errors) or _tail(run.output)
        message = f"{where} {what.get(run.exit_code, 'failed')} (exit {run.exit_code})"
        if run.failed:
            message += f"; failed resources: {', '.join(run.failed)}"
        if run.exit_code == 6:
            message += f"; changed: {changed}"
        raise ActionError(f"{message}:\n{errors}")


def _tail(text: str, lines: int = ERROR_TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])
