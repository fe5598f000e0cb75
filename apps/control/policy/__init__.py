"""Scaling policies: the pure decision code (no database, no store, no clock).

``inputs`` holds what one evaluation knows (the policy's numbers, each
counter's reading, the cluster's in-service / warming / in-flight counts, the
schedule in force, earlier recommendations); ``decide.decide`` turns it into a
``Decision``: the raw desired size, each guard's effect in order, and the final
size. ``words`` says a decision in an operator's words. The service that
reads the database and the sample store and fires chains is
``apps/control/policy_runner.py``; ``bench/policy.py`` drives this same code
on a simulated clock.
"""
