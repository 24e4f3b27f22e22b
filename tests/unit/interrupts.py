"""A scoring's batch function that stops part-way, as an interrupt would (test_resumable_scoring.py,
test_serving.py): a rerun must then score only what the stopped run did not save."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class Interrupted(Exception):
    """Raised where Ctrl-C would come: a real KeyboardInterrupt would stop the test run too."""


def interrupting(run: Callable[[Any], Any], ran: list[int], stop_after: int | None = None,
                 pause: float = 0.0) -> Callable[[Any], Any]:
    """``run`` (one batch's inputs -> its outputs) that appends each batch's row count to ``ran``,
    sleeps ``pause`` seconds after it, and raises :class:`Interrupted` once ``stop_after`` batches
    have run."""
    def one_batch(inputs: Any) -> Any:
        if stop_after is not None and len(ran) == stop_after:
            raise Interrupted
        ran.append(len(inputs["input_ids"]))
        time.sleep(pause)
        return run(inputs)
    return one_batch
