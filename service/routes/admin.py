"""POST /admin/reload: swap in the index version `current` points at now. Only mounted when a token is set."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from photo2cad.service.errors import ReloadRefused, Unauthorized
from photo2cad.service.schemas import ReloadResult, error_responses
from photo2cad.service.security import redact_paths
from photo2cad.service.state import ServiceState, service_state

router = APIRouter(prefix="/admin", tags=["admin"])
bearer = HTTPBearer(auto_error=False, description="the configured PHOTO2CAD_ADMIN_TOKEN")


def require_admin(
    state: Annotated[ServiceState, Depends(service_state)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ServiceState:
    token = state.settings.admin_token
    given = credentials.credentials if credentials is not None else ""
    # Constant-time comparison: the answer's timing must not reveal how much of a guess was right.
    if token is None or not secrets.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise Unauthorized("a valid admin bearer token is required")
    return state


@router.post(
    "/reload",
    response_model=ReloadResult,
    responses=error_responses(401, 409, 503),
    summary="Validate and swap in the index version `current` points at",
)
async def reload_index(state: Annotated[ServiceState, Depends(require_admin)]) -> ReloadResult:
    outcome = await state.served.reload()
    # The indexer's checks name files by their full path: the caller gets them relative to <index> and <pool>.
    places = [(state.served.path, "<index>"), (state.served.current.pool_root, "<pool>")]
    problems = [redact_paths(problem, places) for problem in outcome.problems]
    if outcome.outcome == "refused":
        raise ReloadRefused(
            f"version {outcome.candidate} refused, still serving {outcome.version}: " + "; ".join(problems)
        )
    return ReloadResult(
        outcome=outcome.outcome,
        version=outcome.version,
        previous_version=outcome.previous_version,
        candidate=outcome.candidate,
        problems=problems,
    )
