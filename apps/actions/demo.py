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
