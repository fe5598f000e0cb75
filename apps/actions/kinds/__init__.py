"""One module per action kind; importing this package registers them all."""
from . import (  # noqa: F401
    deploy_ec2_node,
    distributed_script,
    email,
    local_script,
    os_configuration,
    remove_ec2_node,
    webhook,
)
