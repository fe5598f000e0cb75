"""The action of the demo configuration (`make run`, control's demo_setup
command): defined here, beside its kind, so control names no kind."""
from __future__ import annotations

from .choices import ActionKindChoice
from .models import Action


def notify_ops(cluster, mail_to: str) -> Action:
    """Create or update the demo cluster's e-mail action (idempotent)."""
    action, _ = Action.objects.update_or_create(
        cluster=cluster, name="notify-ops",
        defaults={"kind": ActionKindChoice.EMAIL, "timeout_s": 60, "params": {
            "to": [mail_to],
            "subject": "PyScaler: {% if trigger %}{{ trigger }}{% else %}{{ action }}{% endif %} fired on "
                       "{{ cluster }}{% if fired_by_hand %} (by hand){% endif %}",
            "body": "{% if counter %}Counter {{ counter }} on node {{ node }} breached: {{ values }}."
                    "{% else %}{% if trigger %}Trigger {{ trigger }}{% else %}Action {{ action }}{% endif %} "
                    "fired by hand by {{ fired_by }}"
                    "{% if node %} for node {{ node }}{% endif %}.{% endif %}\n"
                    "Execution #{{ execution.pk }} on cluster {{ cluster }}.\n",
        }},
    )
    return action


def scaling_chains(cluster, mail_to: str) -> tuple[list[Action], list[Action]]:
    """The demo policy's chains (idempotent): scale out = DeployEc2Node →
    LocalScript on the new node → e-mail; scale in = RemoveEc2Node → e-mail.
    Each size-changing step takes the number of nodes from the policy's
    decision (``node_count``)."""
    def action(name: str, kind: str, params: dict, timeout_s: int = 120) -> Action:
        made, _ = Action.objects.update_or_create(
            cluster=cluster, name=name, defaults={"kind": kind, "timeout_s": timeout_s, "params": params})
        return made

    deploy = action("demo-deploy", ActionKindChoice.DEPLOY_EC2_NODE, {"wait_running_s": 60})
    configure = action("demo-configure", ActionKindChoice.LOCAL_SCRIPT,
                       {"script": "echo \"configured $(hostname) for the demo\""}, timeout_s=60)
    remove = action("demo-remove", ActionKindChoice.REMOVE_EC2_NODE, {"wait_terminated_s": 60})
    mail = action("notify-scaling", ActionKindChoice.EMAIL, {
        "to": [mail_to],
        "subject": "PyScaler: {{ policy }} scaled {{ cluster }} {{ direction }} by {{ node_count }}",
        "body": "{{ summary }}\nExecution #{{ execution.pk }} on cluster {{ cluster }}.\n",
    }, timeout_s=60)
    return [deploy, configure, mail], [remove, mail]
