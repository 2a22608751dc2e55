"""locus_async: an async client for the Locus Energy v3 and SolarNetwork SolarUser APIs.

One ``LocusClient`` can be shared by any number of tasks: it never exceeds the account's
concurrency allowance (default one request at a time), keeps its OAuth2 token fresh without
a wasted request, retries only what is safe, splits long time ranges into the fewest
DST-safe windows, and returns typed objects. ``SolarNetClient`` (``locus_async.solarnetwork``)
does the same for SolarNetwork on the same shell, signing each request with SNWS2.
``locus_async.simulator`` holds faithful fakes of both servers for tests and demos.
"""

import logging as _logging

from ._core.windows import DEFAULT_LIMITS, Window
from ._limiter import AdaptiveLimiter, Limiter, LocalLimiter, Priority, Slot
from ._oauth import (
    BearerToken,
    ClientCredentialsGrant,
    PasswordGrant,
    RefreshTokenGrant,
    TokenProvider,
    TokenStore,
)
from ._redis import RedisLimiter, RedisTokenStore
from ._retry import RetryPolicy, set_testing, testing
from ._stats import ClientStats
from ._transport import Timeouts
from ._version import __version__
from .backfill import (
    Backfill,
    BackfillProgress,
    BackfillResult,
    BackfillSpec,
    CheckpointError,
    OutputLocked,
    WindowFailure,
)
from .client import DEFAULT_BASE_URL, LocusClient
from .errors import (
    APIError,
    AuthenticationError,
    BadRequest,
    CertificateError,
    ClockSkewError,
    InstructionTimeout,
    InvalidArgumentType,
    LocusError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ResponseDecodeError,
    ServerError,
    TimeoutError,
    TransportError,
    UsageError,
    ValidationFailed,
)
from .models import (
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
from .solarnetwork import Snws2Credentials, SolarNetClient, snws2_authorization
from .timeseries import TimeSeries, WindowStream

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
    "BackfillProgress",
    "BackfillResult",
    "BackfillSpec",
    "BadRequest",
    "BaseField",
    "BearerToken",
    "CertificateError",
    "CheckpointError",
    "Client",
    "ClientCredentialsGrant",
    "ClientStats",
    "ClockSkewError",
    "Component",
    "FieldParameter",
    "Granularity",
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
    "PermissionDenied",
    "Priority",
    "RateLimited",
    "RedisLimiter",
    "RedisTokenStore",
    "RefreshTokenGrant",
    "ResponseDecodeError",
    "RetryPolicy",
    "ServerError",
    "Site",
    "Slot",
    "Snws2Credentials",
    # SolarNetwork
    "SolarNetClient",
    "TimeSeries",
    "TimeoutError",
    "Timeouts",
    "Token",
    # authentication
    "TokenProvider",
    "TokenStore",
    "TransportError",
    "UsageError",
    "ValidationFailed",
    "Window",
    "WindowFailure",
    "WindowStream",
    "__version__",
    "set_testing",
    "snws2_authorization",
    "testing",
]

# A library logs and lets the application decide where logs go: without this, Python's
# last-resort handler would print our retry warnings to stderr on its own.
_logging.getLogger("locus_async").addHandler(_logging.NullHandler())
