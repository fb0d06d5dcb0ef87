"""Tokens API 2021-03-01: createRestrictedDataToken."""

from __future__ import annotations

from ..protocol import Call, Response, Route


def create_restricted_data_token(call: Call) -> Response:
    """``POST /tokens/2021-03-01/restrictedDataToken``."""
    return Response.json(call.services.auth.create_rdt(call.grant, call.request.json()))


ROUTES = (
    Route.of(
        "POST",
        "/tokens/2021-03-01/restrictedDataToken",
        "createRestrictedDataToken",
        create_restricted_data_token,
    ),
)
