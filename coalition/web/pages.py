"""How a route renders a page: the template, the principal and CSRF token every layout needs."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from coalition.web.auth import Principal
from coalition.web.state import ConsoleState


def state_of(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


def render(request: Request, template: str, principal: Principal | None, status: int = 200, **context: Any) -> Response:
    state = state_of(request)
    context.update(principal=principal, csrf=principal.session.csrf_token if principal else "")
    return state.templates.TemplateResponse(request, template, context, status_code=status)
