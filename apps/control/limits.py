"""Bounds of the numbers admins enter (a bad row is refused with the field
named), shared by the control app's model modules."""

MAX_CLUSTER_SIZE = 10000
MAX_STEP_SIZE = 100
MAX_TIMING_MINUTES = 24 * 60
MAX_COOLDOWN_S = 7 * 86400
