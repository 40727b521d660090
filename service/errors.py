"""What the service refuses and with which HTTP status: the one place where errors become responses."""

from __future__ import annotations

from fastapi import FastAPI, Request
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


class NotReady(ServiceError):
    pass


class Unauthorized(ServiceError):
    pass


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
    NotReady: 503,
}


def status_for(error: ServiceError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]  # type: ignore[index]
    return 400


async def _service_error_response(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    status = status_for(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"detail": str(error)}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error_response)
