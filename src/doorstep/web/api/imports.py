"""CSV imports as a whole (``/v1/imports``): check a file without importing it (the dry run
the console's preview shows), and undo an import, which cancels its orders that have not yet
left. Each handler is one pool-thread call (:mod:`doorstep.web.calls`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from doorstep.domain.orders import imports
from doorstep.domain.orders.csv_import import MAX_REPORTED_ERRORS, ImportRejected, RowError
from doorstep.domain.orders.status import Status
from doorstep.web.api.orders import AUTH, NOT_FOUND, CsvBody, _problem, _rejected
from doorstep.web.calls import ApiCallDep, Caller, json_response

router = APIRouter(prefix="/v1/imports", tags=["orders"])


class RowProblem(BaseModel):
    row: int = Field(description="As a spreadsheet numbers it: the header is row 1")
    field: str
    message: str
    code: str

    @classmethod
    def of(cls, error: RowError) -> RowProblem:
        return cls(row=error.row, field=error.field, message=error.message, code=error.code)


class ImportCheckOut(BaseModel):
    """What importing the file would do; nothing was written."""

    ok: bool = Field(description="True when `POST /v1/orders/import` would import every row")
    valid_rows: int
    error_rows: int
    error_count: int
    errors: list[RowProblem] = Field(description=f"The first {MAX_REPORTED_ERRORS}, by row")


class KeptOrder(BaseModel):
    id: str
    status: Status


class UndoOut(BaseModel):
    """What undoing the import did."""

    import_id: str
    cancelled: list[str] = Field(description="Ids of the orders cancelled now")
    kept: list[KeptOrder] = Field(description="Orders that had already left, with their status")


@router.post(
    "/check",
    response_model=ImportCheckOut,
    summary="Check a CSV file without importing it (dry run)",
    description=(
        "The same body and rules as `POST /v1/orders/import`, including references already "
        "used and windows already over; nothing is written. Answers 200 with every error by "
        "spreadsheet `row` and `field`, or `ok: true`."
    ),
    responses={
        **AUTH,
        413: _problem("File too large"),
        415: _problem("Not CSV"),
        422: _problem("Not UTF-8 text"),
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
async def check_import(api: ApiCallDep, content: CsvBody, request: Request) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        checked = imports.check_import(
            session,
            caller.clock,
            caller.merchant_id,
            content,
            max_rows=caller.settings.max_import_rows,
            timezone=caller.merchant.timezone,
        )
        return json_response(
            ImportCheckOut(
                ok=checked.ok,
                valid_rows=len(checked.orders),
                error_rows=checked.error_rows,
                error_count=len(checked.errors),
                errors=[RowProblem.of(e) for e in checked.errors[:MAX_REPORTED_ERRORS]],
            )
        )

    try:
        return await api.read(work)
    except ImportRejected as exc:  # not UTF-8: nothing to show row by row
        return _rejected(exc, request.url.path)


@router.post(
    "/{import_id}/undo",
    response_model=UndoOut,
    summary="Undo an import: cancel its orders that have not yet left",
    description=(
        "Cancels (reason `merchant_cancelled`) every order the import created that is still "
        "`pending`, `scheduled` or `on_hold`; orders already out for delivery, delivered or "
        "otherwise under way keep their status and are listed in `kept`. Undoing again "
        "cancels nothing more. 404 for an unknown import or another merchant's."
    ),
    responses={**AUTH, **NOT_FOUND},
)
async def undo_import(import_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        done = imports.undo_import(
            session, caller.clock, caller.merchant_id, import_id, actor=caller.actor
        )
        return json_response(
            UndoOut(
                import_id=done.import_id,
                cancelled=done.cancelled,
                kept=[KeptOrder(id=k, status=Status(v)) for k, v in done.kept.items()],
            )
        )

    return await api.write(work)
