"""A refused status change names, for every status, exactly the statuses the transition table
lets it become (or says it is final)."""

from __future__ import annotations

import pytest

from doorstep.domain.orders.status import (
    TRANSITIONS,
    Status,
    next_statuses,
    status_words,
    transition_refusal,
)


@pytest.mark.parametrize("current", list(Status))
def test_each_refusal_lists_the_allowed_next_statuses(current: Status) -> None:
    """The sentence lists every allowed next status but itself, in lifecycle order, and
    never a forbidden one; a status with no way out is called final."""
    forbidden = [s for s in Status if s not in TRANSITIONS[current]]
    if not forbidden:
        pytest.skip(f"{current} may become anything")
    text = transition_refusal(current, forbidden[0])
    head = f"an order that is {status_words(current)} cannot become {status_words(forbidden[0])}"
    assert text.startswith(head)
    allowed = [s for s in next_statuses(current) if s is not current]
    if not allowed:
        assert text == f"{head}: {status_words(current)} is final"
        return
    listed = text.removeprefix(f"{head}; it can become: ").split(", ")
    assert listed == [status_words(s) for s in allowed]
    assert set(allowed) == set(TRANSITIONS[current]) - {current}
