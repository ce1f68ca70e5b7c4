"""``run_with_own_transactions`` for a verb that does not hand its transaction to ``store``:
its answer is still stored once the work is done, so a retry replays instead of redoing."""

from __future__ import annotations

from doorstep.clock import FrozenClock
from doorstep.domain import idempotency
from doorstep.domain.idempotency import Answer, IdempotentRequest, StoreAnswer
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx


def test_an_answer_not_stored_by_the_action_is_stored_after_it(
    runtime: Runtime, clock: FrozenClock, merchant: MerchantCtx
) -> None:
    runs: list[int] = []

    def action(_store: StoreAnswer) -> Answer:
        runs.append(1)
        return Answer(201, {"id": "thing-1"})

    request = IdempotentRequest(
        merchant_id=merchant.id,
        key="own-1",
        method="POST",
        path="/v1/things",
        fingerprint=idempotency.fingerprint("POST", "/v1/things", b"{}"),
    )
    first = idempotency.run_with_own_transactions(runtime.sessions, clock, request, action)
    again = idempotency.run_with_own_transactions(runtime.sessions, clock, request, action)
    assert (first.status_code, first.body, first.replayed) == (201, {"id": "thing-1"}, False)
    assert (again.status_code, again.body, again.replayed) == (201, {"id": "thing-1"}, True)
    assert runs == [1]
