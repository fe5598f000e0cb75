"""The operator web console: overview, cluster pages, firing, node management
and execution history (pages), plus the control half of the data API."""
