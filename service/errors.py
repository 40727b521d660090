"""What the service refuses and with which HTTP status: the one place where errors become responses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from photo2cad.errors import Photo2CadError


class ServiceConfigError(Photo2CadError):
    """The service cannot start as configured (no index, weights that do not fit it)."""


class ServiceError(Exception):
    """A request the service refuses; the message is written for the caller."""


class BadImage(ServiceError):
    """Empty, truncated, corrupt, too small or too elongated, or a mask that does not fit its photo."""


class UnsupportedImage(ServiceError):
    """Not a JPEG, PNG or WebP."""


class ImageTooLarge(ServiceError):
    """More pixels than the configured limit (a decompression bomb looks like this too)."""


class UnknownCategory(ServiceError):
    pass


class ShapeNotFound(ServiceError):
    pass


class OutsidePool(ServiceError):
    """A stored path resolves outside the directory it must live in (a symlink, an edited manifest)."""


class MeshNotConvertible(ServiceError):
    """The original mesh file is served, but it cannot be packed into a GLB."""


class NotReady(ServiceError):
    pass


class Busy(ServiceError):
    """More photos in flight than the service takes on at once; the caller should retry shortly."""


class Unauthorized(ServiceError):
    challenge = "Bearer"  # the WWW-Authenticate answer: how to authenticate


class ApiKeyRequired(Unauthorized):
    """PHOTO2CAD_API_KEY is set and the request did not carry it in X-API-Key."""

    challenge = 'ApiKey header="X-API-Key"'


class ReloadRefused(ServiceError):
    """The new index version failed validation; the old one keeps serving."""


STATUS: dict[type[ServiceError], int] = {
    BadImage: 400,
    UnknownCategory: 400,
    Unauthorized: 401,
    OutsidePool: 403,
    ShapeNotFound: 404,
    ReloadRefused: 409,
    ImageTooLarge: 413,
    UnsupportedImage: 415,
    MeshNotConvertible: 500,
    NotReady: 503,
    Busy: 503,
}

RETRY_AFTER_SECONDS = "1"


def status_for(error: ServiceError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]  # type: ignore[index]
    return 400


async def _service_error_response(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    status = status_for(error)
    headers = {}
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = error.challenge
    if status == 503:
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    return JSONResponse({"detail": str(error)}, status_code=status, headers=headers)


async def _validation_error_response(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422 without the `input` it echoes: for a misnamed upload field that is the upload object's repr
    (file name, size, headers); `loc`, `msg` and `type` say what is wrong."""
    assert isinstance(error, RequestValidationError)
    details = [{key: value for key, value in item.items() if key in ("loc", "msg", "type")} for item in error.errors()]
    return JSONResponse({"detail": jsonable_encoder(details)}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error_response)
    app.add_exception_handler(RequestValidationError, _validation_error_response)
