from django.db import models


class ActionKindChoice(models.TextChoices):
    """The six action kinds of the seed, and Webhook (issue 12). Each value
    has one class in apps/actions/kinds/, found through apps.actions.registry."""

    DEPLOY_EC2_NODE = "deploy_ec2_node", "DeployEc2Node"
    REMOVE_EC2_NODE = "remove_ec2_node", "RemoveEc2Node"
    DISTRIBUTED_SCRIPT = "distributed_script", "DistributedScript"
    LOCAL_SCRIPT = "local_script", "LocalScript"
    OS_CONFIGURATION = "os_configuration", "OSConfiguration"
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"
