"""One retry policy for every request a client makes: API calls and byte transfers alike.

Waits honour ``Retry-After`` (capped) and otherwise back off exponentially with full jitter,
so that thousands of cron runs hitting one busy server do not retry in step. A transfer that
made progress since its last failure starts counting again: a slow, flaky link that still
moves bytes is never abandoned, while a dead one gives up after ``attempts`` tries.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry :class:`~assetfiles.client.errors.Retryable` failures.

    >>> RetryPolicy(attempts=3).gives_up(3)
    True
    """

    attempts: int = 8  # consecutive failures without progress before giving up
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 300.0
    refusals: int = 3  # consecutive refused URLs (403/410), each after a fresh one

    def gives_up(self, failures: int) -> bool:
        return failures >= self.attempts

    def pause(self, failures: int, wait: float | None) -> float:
        """Seconds before the next try: none after progress (``failures`` 0) or when told 0."""
        if failures == 0 or wait == 0:
            return 0.0
        return self.wait(failures, wait)

    def wait(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait before try ``failures + 1``: the server's word, else full jitter."""
        if retry_after is not None:
            return min(retry_after, self.retry_after_max)
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** max(failures - 1, 0))
        return random.uniform(0, ceiling)


def retry_after_seconds(header: str | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); None when absent or invalid."""
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())
