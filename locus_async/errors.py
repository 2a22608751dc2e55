"""Every exception this library raises on purpose.

The tree (catch the narrowest one you can act on)::

    LocusError                      root of everything below
    ├── TransportError              no usable response: connect, timeout, dropped body
    │   ├── TimeoutError            connect/read/write/pool or whole-call deadline
    │   └── CertificateError        TLS verification failed (never retried)
    ├── APIError                    the server answered with an error status
    │   ├── BadRequest              400  (also 422 from SolarNetwork: ValidationFailed)
    │   │   └── ValidationFailed    422  parameter or body rejected
    │   ├── AuthenticationError     401  (and failed token grants)
    │   │   ├── ClockSkewError      SolarNetwork: the request date is >15 min off
    │   │   └── SignInError         the sign-in service (Cognito) refused; ``code`` says why
    │   │       ├── WrongCredentials        wrong username or password
    │   │       ├── UnknownUser             no such user (a display name is not one)
    │   │       ├── UserNotConfirmed        the account was never confirmed
    │   │       ├── PasswordResetRequired   an administrator asked for a new password
    │   │       ├── TooManyAttempts         locked out for now: never retried
    │   │       └── ChallengeRequired       MFA or a new password: ``challenge`` names it
    │   ├── PermissionDenied        403  the token is fine, the entity is not yours
    │   ├── NotFound                404
    │   ├── RateLimited             429  carries ``retry_after`` (seconds) when known
    │   └── ServerError             5xx
    ├── ResponseDecodeError         body unreadable or off-schema; names the JSON path
    ├── InstructionTimeout          SolarNetwork: an instruction did not finish in time
    └── UsageError (ValueError)     bad arguments, raised before any network I/O
        └── InvalidArgumentType (TypeError)

Rules this module keeps: no exception holds a credential, a token or a request body;
messages name the request by method and path only.
"""

from __future__ import annotations

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequest",
    "CertificateError",
    "ChallengeRequired",
    "ClientClosed",
    "ClockSkewError",
    "EventLoopChanged",
    "InstructionTimeout",
    "InvalidArgumentType",
    "LocusError",
    "NotFound",
    "PasswordResetRequired",
    "PermissionDenied",
    "RateLimited",
    "RequestTimeout",
    "ResponseDecodeError",
    "ServerError",
    "SignInError",
    "TooManyAttempts",
    "TransportError",
    "UnknownUser",
    "UsageError",
    "UserNotConfirmed",
    "ValidationFailed",
    "WrongCredentials",
]

import builtins
from typing import Any


class LocusError(Exception):
    """Root of every error raised by locus_async. Every one pickles with its attributes
    (a Dask task's error reaches the caller whole)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type[LocusError], args: tuple[Any, ...], state: dict[str, Any]) -> LocusError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class UsageError(LocusError, ValueError):
    """The call itself is wrong (bad ids, ranges, time zones, fields...); nothing was sent."""


class InvalidArgumentType(UsageError, TypeError):
    """An argument has the wrong type; nothing was sent."""


class ClientClosed(UsageError):
    """The client was closed (``aclose()``, or its ``async with`` block ended); nothing was
    sent. Make a new client, or keep using this one inside its block."""


class EventLoopChanged(UsageError):
    """The client is used in an event loop other than the one it was first used in (each
    ``asyncio.run`` or ``trio.run`` starts a new loop); nothing was sent. Its connections
    and limits belong to that loop: make the client inside the function you run, or run
    the whole program in one loop."""


class TransportError(LocusError):
    """No usable HTTP response: connection refused or reset, timeout, body cut off.

    ``request`` is ``"METHOD /path"`` of the exchange that failed (headers and bodies are
    never included). ``request_sent`` is False when the request certainly never reached the
    server (the connection did not open), which makes any request safe to send again.
    """

    def __init__(self, message: str, *, request: str = "", request_sent: bool = True) -> None:
        where = f" ({request})" if request else ""
        super().__init__(f"{message}{where}")
        self.request = request
        self.request_sent = request_sent


class RequestTimeout(TransportError, builtins.TimeoutError):
    """A connect, read, write, pool or whole-call deadline expired. Also a builtin
    ``TimeoutError``, so ``except TimeoutError`` catches it."""


#: The name of ``RequestTimeout`` before 0.2 (it shadowed the builtin on ``import *``).
TimeoutError = RequestTimeout


class CertificateError(TransportError):
    """The server's TLS certificate could not be verified. Never retried: the same
    certificate fails the same way every time. Check ``verify=`` (a CA bundle or an
    SSLContext) and the host name in the base URL."""


class APIError(LocusError):
    """The server answered with an error status.

    Attributes: ``status_code``; ``message`` (the server's message, secrets redacted);
    ``code`` (a provider error code when the body has one, e.g. SolarNetwork ``DAO.00102``);
    ``request`` (``"METHOD /path"``); ``method`` and ``url`` (the whole URL, query
    included: neither API puts a secret there); ``request_id`` (the server's id of the
    request, from ``X-Request-Id`` and the like, when it sent one); ``retry_after``
    (seconds, when the server said).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        request: str = "",
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.message = message
        self.request = request
        self.code = code
        self.retry_after = retry_after
        #: Filled in by the client that received the answer.
        self.method = request.split(" ", 1)[0] if request else ""
        self.url = ""
        self.request_id: str | None = None
        where = f" ({request})" if request else ""
        coded = f" [{code}]" if code else ""
        super().__init__(f"HTTP {status_code}{coded}: {message}{where}")


class BadRequest(APIError):
    """400: the server rejected the request's parameters."""


class ValidationFailed(BadRequest):
    """422: a parameter or body was rejected (SolarNetwork ``VAL.*``/``DAO.*`` codes)."""


class AuthenticationError(APIError):
    """401, or a token grant that failed: the credentials or token are not accepted."""


class ClockSkewError(AuthenticationError):
    """The server refused the request's date: the local clock is more than 15 minutes off."""


class SignInError(AuthenticationError):
    """The sign-in service (AWS Cognito) refused the sign-in; ``code`` is its own name for
    the reason (``NotAuthorizedException``...). Never retried."""


class WrongCredentials(SignInError):
    """The username or the password is wrong."""


class UnknownUser(SignInError):
    """The pool has no such user: sign in with the username (often the e-mail address),
    not the display name."""


class UserNotConfirmed(SignInError):
    """The account exists but was never confirmed (the sign-up e-mail was not answered)."""


class PasswordResetRequired(SignInError):
    """The password must be reset (in the web sign-in) before the account can sign in."""


class TooManyAttempts(SignInError):
    """Too many sign-in attempts: the account is locked for a while. Never retried, since
    every further attempt extends the lock."""


class ChallengeRequired(SignInError):
    """The sign-in asks for a step a program cannot take (MFA, a new password...);
    ``challenge`` is Cognito's name for it (``SOFTWARE_TOKEN_MFA``, ``NEW_PASSWORD_REQUIRED``)."""

    def __init__(
        self, message: str, *, challenge: str, status_code: int = 200, request: str = ""
    ) -> None:
        super().__init__(message, status_code=status_code, request=request, code=challenge)
        self.challenge = challenge
        # A challenge is a successful answer: "HTTP 200" would only mislead.
        self.args = (f"{message} ({request})" if request else message,)


class PermissionDenied(APIError):
    """403: authenticated, but the entity is not yours. Never retried, never re-authenticated."""


class NotFound(APIError):
    """404: no such entity."""


class RateLimited(APIError):
    """429: too many requests for this credential. ``retry_after`` is in seconds, or None."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 429,
        request: str = "",
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, status_code=status_code, request=request, code=code, retry_after=retry_after
        )


class ServerError(APIError):
    """5xx: the server failed."""


class ResponseDecodeError(LocusError):
    """The body could not be read (not JSON, truncated, bad gzip) or does not fit the schema.

    ``path`` is the JSON path of the first problem (``$`` for the whole body), ``problems``
    every problem found as ``"description @ path"`` strings. ``garbled`` is True when the
    body was cut or is not JSON (or not gzip) at all: only then is a retry worth it. A
    well-formed body that does not match the schema would be the same the next time.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "$",
        problems: tuple[str, ...] = (),
        request: str = "",
        garbled: bool = False,
    ) -> None:
        where = f" ({request})" if request else ""
        super().__init__(f"{message}{where}")
        self.path = path
        self.problems = problems
        self.request = request
        self.garbled = garbled


class InstructionTimeout(LocusError):
    """A SolarNetwork instruction did not reach Completed or Declined before the deadline.

    ``instruction`` is its last known state (a ``solarnetwork.Instruction``; it may still
    finish later).
    """

    def __init__(self, message: str, *, instruction: object) -> None:
        super().__init__(message)
        self.instruction = instruction
