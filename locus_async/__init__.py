"""locus_async: an async client for the Locus Energy v3 and SolarNetwork SolarUser APIs.

One ``LocusClient`` can be shared by any number of tasks: it never exceeds the account's
concurrency allowance (default one request at a time), keeps its OAuth2 token fresh without
a wasted request, retries only what is safe, splits long time ranges into the fewest
DST-safe windows, and returns typed objects. ``SolarNetClient`` (``locus_async.solarnetwork``)
does the same for SolarNetwork on the same shell, signing each request with SNWS2.
``locus_async.simulator`` holds faithful fakes of both servers for tests and demos.
"""

import logging as _logging

from locus_async._core.converter import from_jsonable, to_jsonable
from locus_async._shell.limiter import AdaptiveLimiter, Limiter, LocalLimiter, Priority, Slot
from locus_async._shell.redis import RedisLimiter, RedisTokenStore
from locus_async._shell.retry import RetryPolicy, set_testing, testing
from locus_async._shell.stats import ClientStats
from locus_async._shell.transport import HttpxAuth, Timeouts
from locus_async._version import __version__
from locus_async.errors import (
    APIError,
    AuthenticationError,
    BadRequest,
    CertificateError,
    ChallengeRequired,
    ClientClosed,
    ClockSkewError,
    EventLoopChanged,
    InstructionTimeout,
    InvalidArgumentType,
    LocusError,
    NotFound,
    PasswordResetRequired,
    PermissionDenied,
    RateLimited,
    RequestTimeout,
    ResponseDecodeError,
    ServerError,
    SignInError,
    TooManyAttempts,
    TransportError,
    UnknownUser,
    UsageError,
    UserNotConfirmed,
    ValidationFailed,
    WrongCredentials,
)
from locus_async.locus._core.windows import DEFAULT_LIMITS, Window
from locus_async.locus.auth import (
    BearerToken,
    ClientCredentialsGrant,
    CognitoPasswordGrant,
    PasswordGrant,
    RefreshTokenGrant,
    TokenProvider,
    TokenStore,
)
from locus_async.locus.backfill import (
    Backfill,
    BackfillPlan,
    BackfillProgress,
    BackfillResult,
    BackfillSpec,
    CheckpointError,
    CompactionResult,
    OutputLocked,
    WindowFailure,
    compact_dataset,
)
from locus_async.locus.client import DEFAULT_BASE_URL, LocusClient
from locus_async.locus.models import (
    Aggregation,
    Alert,
    BaseField,
    Client,
    Component,
    FieldParameter,
    Granularity,
    InstallInfo,
    ModelSettings,
    Site,
    Token,
)
from locus_async.locus.timeseries import TimeSeries, WindowStream
from locus_async.solarnetwork import Snws2Credentials, SolarNetClient, snws2_authorization

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_LIMITS",
    "APIError",
    "AdaptiveLimiter",
    # models
    "Aggregation",
    "Alert",
    "AuthenticationError",
    # backfills
    "Backfill",
    "BackfillPlan",
    "BackfillProgress",
    "BackfillResult",
    "BackfillSpec",
    "BadRequest",
    "BaseField",
    "BearerToken",
    "CertificateError",
    "ChallengeRequired",
    "CheckpointError",
    "Client",
    "ClientClosed",
    "ClientCredentialsGrant",
    "ClientStats",
    "ClockSkewError",
    "CognitoPasswordGrant",
    "CompactionResult",
    "Component",
    "EventLoopChanged",
    "FieldParameter",
    "Granularity",
    "HttpxAuth",
    "InstallInfo",
    "InstructionTimeout",
    "InvalidArgumentType",
    # limiting
    "Limiter",
    "LocalLimiter",
    # client and configuration
    "LocusClient",
    # errors
    "LocusError",
    "ModelSettings",
    "NotFound",
    "OutputLocked",
    "PasswordGrant",
    "PasswordResetRequired",
    "PermissionDenied",
    "Priority",
    "RateLimited",
    "RedisLimiter",
    "RedisTokenStore",
    "RefreshTokenGrant",
    "RequestTimeout",
    "ResponseDecodeError",
    "RetryPolicy",
    "ServerError",
    "SignInError",
    "Site",
    "Slot",
    "Snws2Credentials",
    # SolarNetwork
    "SolarNetClient",
    "TimeSeries",
    "Timeouts",
    "Token",
    # authentication
    "TokenProvider",
    "TokenStore",
    "TooManyAttempts",
    "TransportError",
    "UnknownUser",
    "UsageError",
    "UserNotConfirmed",
    "ValidationFailed",
    "Window",
    "WindowFailure",
    "WindowStream",
    "WrongCredentials",
    "__version__",
    "compact_dataset",
    "from_jsonable",
    "set_testing",
    "snws2_authorization",
    "testing",
    "to_jsonable",
]


def _public_paths() -> None:
    """Classes and functions defined in private modules show the path users import them
    by (``locus_async.LocalLimiter``, not ``locus_async._shell.limiter.LocalLimiter``) in
    reprs, ``help()`` and tracebacks. attrs classes keep theirs: their annotations are
    resolved in the module that defines them."""
    import attrs as _attrs

    for name in __all__:
        value = globals()[name]
        module = getattr(value, "__module__", "") or ""
        private = any(part.startswith("_") for part in module.split(".")[1:])
        if not private or (isinstance(value, type) and _attrs.has(value)):
            continue
        if isinstance(value, type) or callable(value):
            value.__module__ = __name__


_public_paths()


def __getattr__(name: str) -> object:
    """``locus_async.TimeoutError``, the old name of ``RequestTimeout``, still works (with
    a DeprecationWarning) but is not exported: ``import *`` no longer shadows the builtin."""
    if name == "TimeoutError":
        import warnings

        warnings.warn(
            "locus_async.TimeoutError is now locus_async.RequestTimeout (a builtin "
            "TimeoutError too): the old name will go in 1.0",
            DeprecationWarning,
            stacklevel=2,
        )
        return RequestTimeout
    raise AttributeError(f"module 'locus_async' has no attribute {name!r}")


# A library logs and lets the application decide where logs go: without this, Python's
# last-resort handler would print our retry warnings to stderr on its own.
_logging.getLogger("locus_async").addHandler(_logging.NullHandler())
