"""The operator console's pages: overview, cluster pages, firing
confirmations, node management and execution history. What they show comes
from apps/web/status.py, what they do from apps/web/firing.py (the data API
calls the same two)."""
