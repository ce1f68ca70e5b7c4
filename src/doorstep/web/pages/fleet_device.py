"""The driver page's "GPS app" card: the server URL and device id a driver's OsmAnd, Traccar
Client or OwnTracks app needs, as text and as a QR code (segno, inline SVG, nothing fetched),
and a button that issues a new random device id (the old one stops working at once).

The card is drawn by :func:`device_card` inside the fleet edit page (pages/fleet.py); the
button posts to ``/console/drivers/drivers/{id}/device`` (this router, mounted before the fleet
router so its catch-all ``/{kind}/{id}/{change}`` does not take the path).
"""

from __future__ import annotations

from typing import Annotated, Any

import segno
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from doorstep.domain.accounts.users import Action
from doorstep.domain.dispatch.models import Driver
from doorstep.domain.errors import NotFound
from doorstep.domain.tracking.devices import rotate_device_id
from doorstep.domain.tracking.pairing import pairing_for
from doorstep.runtime import Runtime
from doorstep.web.csrf import FIELD_NAME, csrf_ok
from doorstep.web.pages.auth import ConsoleForbidden, ConsoleUser
from doorstep.web.pages.calls import console_page
from doorstep.web.pages.console import render_console

__all__ = ["device_card", "router"]

router = APIRouter(prefix="/console/drivers/drivers", include_in_schema=False)

FLASH_KEY = "fleet_flash"  # the fleet pages' flash message (pages/fleet.py)


def qr_svg(text: str, title: str) -> Markup:
    """``text`` as an inline SVG QR code (error correction M, dark on white, with a title)."""
    code = segno.make(text, error="m", micro=False)
    svg = code.svg_inline(
        scale=4,
        border=2,
        dark="#111111",
        light="#ffffff",
        title=title,
        svgclass="device-qr",
        omitsize=True,  # a viewBox, so CSS can size it
    )
    # segno escapes the title and encodes the text as modules: its SVG is safe to inline.
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))  # noqa: S704


def device_card(request: Request, driver: Driver) -> dict[str, Any]:
    """What the driver page's "GPS app" card shows."""
    runtime: Runtime = request.app.state.runtime
    pairing = pairing_for(driver, runtime.settings.base_url)
    return {
        "device_id": pairing.device_id,
        "osmand_url": pairing.osmand_url,
        "owntracks_url": pairing.owntracks_url,
        "setup_url": pairing.setup_url,
        "osmand_app_url": pairing.osmand_app_url,
        "qr": qr_svg(pairing.setup_url, f"Settings for {driver.name}'s GPS app")
        if pairing.setup_url
        else None,
    }


async def _csrf_field(request: Request) -> str | None:
    form = await request.form(max_files=0, max_fields=10)
    token = form.get(FIELD_NAME)
    return token if isinstance(token, str) else None


@router.post("/{driver_id}/device", name="console_driver_device_rotate")
@console_page(Action.DRIVERS_MANAGE)
def rotate(
    request: Request,
    driver_id: str,
    me: ConsoleUser,
    session: Session,
    token: Annotated[str | None, Depends(_csrf_field)],
) -> Response:
    """Issue a new device id and go back to the driver's page."""
    if not csrf_ok(request, token):
        raise ConsoleForbidden("the form expired; reload the page and try again")
    try:
        driver = rotate_device_id(session, me.merchant.id, driver_id)
    except NotFound:
        return render_console(
            request,
            me,
            "error.html",
            {"title": "Not found", "message": f"There is no such driver in {me.merchant.name}."},
            status_code=404,
        )
    session.commit()  # before this process forgets the old id, so no request can re-cache it
    request.app.state.position_ingest.forget_driver(driver.id)
    request.session[FLASH_KEY] = {
        "kind": "success",
        "text": f"{driver.name} has a new device id: set it in their GPS app; the old one "
        "no longer works.",
    }
    return RedirectResponse(f"/console/drivers/drivers/{driver_id}#gps-app", status_code=303)
