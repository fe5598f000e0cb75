"""How the chain runner retries a step whose kind failed retryably.

A kind raises ``ActionError(..., retryable=True)`` when running the step
again may help (a timeout of one call, a throttled or unavailable API, a
dropped SSH connection). The runner then runs the kind again in the same
claim of the step, with the same StepContext (its checkpointed state
included, so a kind that must not repeat a side effect still sees what an
earlier try did), after a pause:

- at most CHAIN_STEP_RETRY_ATTEMPTS tries in all (default 3; 1 turns
  retrying off);
- the pause before try n+1 is CHAIN_STEP_RETRY_BACKOFF_S * 2**(n-1) seconds
  (default 1, 2, 4, ...), capped at CHAIN_STEP_RETRY_MAX_BACKOFF_S (30);
- never past the step's deadline (the action's timeout): no try starts after
  it, so Celery's time limits and the step's lease still hold.

Every try counts in the step's ``attempts`` and is told to the kind as
``ctx.attempt``; each retry is noted in the step's output. A failure that is
not retryable, or the last one, fails the step with the kind's own message.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class RetryPolicy:
    #: Tries in all, the first included.
    attempts: int = 3
    #: Pause before the second try; doubled for each later one.
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        return cls(
            attempts=max(1, int(getattr(settings, "CHAIN_STEP_RETRY_ATTEMPTS", cls.attempts))),
            backoff_s=float(getattr(settings, "CHAIN_STEP_RETRY_BACKOFF_S", cls.backoff_s)),
            max_backoff_s=float(getattr(settings, "CHAIN_STEP_RETRY_MAX_BACKOFF_S", cls.max_backoff_s)),
        )

    def pause(self, tries: int, remaining: float) -> float | None:
        """Seconds to wait after ``tries`` failed tries before the next one,
        or None when there is no next one (the bound is reached, or the pause
        would not end before the step's deadline, ``remaining`` s away)."""
        if tries >= self.attempts:
            return None
        pause = min(self.max_backoff_s, self.backoff_s * 2 ** (tries - 1))
        return pause if pause < remaining else None

    def why_not(self, tries: int) -> str:
        """Why pause() said no more tries, in the step output's words."""
        if tries >= self.attempts:
            return f"{tries} tries is the bound (CHAIN_STEP_RETRY_ATTEMPTS)"
        return "the step's deadline comes first"
