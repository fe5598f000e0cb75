from django import forms

from ..choices import ActionKindChoice
from ..contract import ActionError, ActionKind, StepContext, StepResult
from ..registry import register

_EMPTY_SCRIPT = "is empty; give the shell script to run on the target node"
#: Bytes of a script's output kept (the tail; the end says why it failed).
OUTPUT_LIMIT = 32 * 1024


@register
class LocalScript(ActionKind):
    """A shell script run on the chain's target node (the seed's "local
    command in the target"); a non-zero exit fails the step."""

    kind = ActionKindChoice.LOCAL_SCRIPT
    label = "LocalScript"
    needs_target_node = True

    class Params(forms.Form):
        script = forms.CharField(strip=False, help_text="shell script run with /bin/sh on the target node")

        def clean_script(self):
            script = self.cleaned_data["script"]
            if not script.strip():
                raise forms.ValidationError(_EMPTY_SCRIPT)
            return script

    def run(self, ctx: StepContext) -> StepResult:
        from .. import ssh_exec

        node = ctx.target_node
        if node is None:
            raise ActionError("LocalScript needs a target node")
        target = ssh_exec.SshTarget.for_node(node)
        client = ssh_exec.connect(target, ctx.deadline)
        try:
            result = ssh_exec.run_bounded(client, self.params["script"], ctx.deadline, OUTPUT_LIMIT)
        finally:
            client.close()
        if result.output:
            ctx.log(result.output.rstrip("\n"))
        if result.timed_out:
            stop = ("the node sent TERM, then KILL, to the script and every process it started"
                    if result.stopped else
                    "the connection was closed, and the node stops the script and every process "
                    "it started when it sees that")
            raise ActionError(
                f"script on {node.name} timed out after {result.elapsed_s:.1f} s (the action's timeout); "
                f"{stop}; output tail:\n{_tail(result.output)}",
                retryable=True,
            )
        if result.exit_status is None:
            raise ActionError(
                f"script on {node.name} ended without an exit status (killed on the node, or the "
                f"connection was lost); output tail:\n{_tail(result.output)}",
                retryable=True,
            )
        if result.exit_status != 0:
            raise ActionError(
                f"script on {node.name} exited with status {result.exit_status}; output tail:\n"
                f"{_tail(result.output)}"
            )
        return StepResult(summary=f"script on {node.name} exited 0 in {result.elapsed_s:.1f} s")


def _tail(output: str, lines: int = 20) -> str:
    return "\n".join(output.rstrip("\n").splitlines()[-lines:]) or "(no output)"
