"""Bad input: a typed error naming the problem, raised before any network I/O."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from locus_async import (
    AdaptiveLimiter,
    Backfill,
    BearerToken,
    InvalidArgumentType,
    LocalLimiter,
    LocusClient,
    RedisLimiter,
    RedisTokenStore,
    RetryPolicy,
    SolarNetClient,
    Timeouts,
    UsageError,
)
from locus_async.cli import main
from locus_async.locus.backfill import BackfillSpec
from locus_async.simulator import Faults, Simulator

NOW = datetime(2024, 6, 1, tzinfo=UTC).timestamp()


class NoNetwork:
    """An httpx transport that records every request it is (wrongly) asked to send."""

    def __init__(self) -> None:
        self.calls: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        return httpx.Response(500)


def _locus(**kwargs: Any) -> Callable[[], LocusClient]:
    return lambda: LocusClient(auth=BearerToken("t-123456"), **kwargs)


def _spec(**kwargs: Any) -> BackfillSpec:
    args: dict[str, Any] = {
        "fields": "W_avg", "start": "2024-01-01", "end": "2024-01-02", "tz": "UTC",
        "gran": "hourly", "components": (54369,),
    }  # fmt: skip
    return BackfillSpec(**{**args, **kwargs})


def _backfill(out: Any, **kwargs: Any) -> Backfill:
    return Backfill(_locus()(), _spec(), out, **kwargs)


def _client(net: NoNetwork, **kwargs: Any) -> LocusClient:
    return LocusClient(
        auth=BearerToken("tok-123456"), transport=net.transport, wall=lambda: NOW, **kwargs
    )


Case = Callable[[LocusClient], Awaitable[Any]]
D = {"fields": "W_avg", "tz": "UTC", "gran": "hourly"}

CASES: list[tuple[str, Case, type[Exception], str]] = [
    (
        "naive start, aware end",
        lambda c: c.components.data(
            1, start=datetime(2024, 1, 1), end=datetime(2024, 1, 2, tzinfo=UTC), **D
        ),
        UsageError,
        "mix a naive and an aware",
    ),
    (
        "aware start, naive end as strings",
        lambda c: c.components.data(
            1, start="2024-01-01T00:00:00+00:00", end="2024-01-02T00:00:00", **D
        ),
        UsageError,
        "mix a naive and an aware",
    ),
    (
        "start equals end",
        lambda c: c.components.data(1, start="2024-01-01", end="2024-01-01", **D),
        UsageError,
        "must be before end",
    ),
    (
        "start after end",
        lambda c: c.components.data(1, start="2024-02-01", end="2024-01-01", **D),
        UsageError,
        "must be before end",
    ),
    (
        "unknown granularity",
        lambda c: c.components.data(
            1, start="2024-01-01", end="2024-01-02", fields="W_avg", tz="UTC", gran="2min"
        ),
        UsageError,
        "unknown granularity '2min'",
    ),
    (
        "granularity of the wrong type",
        lambda c: c.components.data(
            1, start="2024-01-01", end="2024-01-02", fields="W_avg", tz="UTC", gran=5
        ),
        InvalidArgumentType,
        "gran must be a string",
    ),
    (
        "invalid time zone",
        lambda c: c.components.data(
            1,
            start="2024-01-01",
            end="2024-01-02",
            fields="W_avg",
            tz="Mars/Olympus",
            gran="hourly",
        ),
        UsageError,
        "not a known IANA time zone",
    ),
    (
        "time zone path trick",
        lambda c: c.components.data(
            1,
            start="2024-01-01",
            end="2024-01-02",
            fields="W_avg",
            tz="../../etc/passwd",
            gran="hourly",
        ),
        UsageError,
        "not a valid IANA time zone",
    ),
    (
        "time zone of the wrong type",
        lambda c: c.components.data(
            1, start="2024-01-01", end="2024-01-02", fields="W_avg", tz=-8, gran="hourly"
        ),
        InvalidArgumentType,
        "tz must be",
    ),
    (
        "empty field list",
        lambda c: c.components.data(
            1, start="2024-01-01", end="2024-01-02", fields=[], tz="UTC", gran="hourly"
        ),
        UsageError,
        "fields is empty",
    ),
    (
        "empty field string",
        lambda c: c.components.data(
            1, start="2024-01-01", end="2024-01-02", fields=" , ", tz="UTC", gran="hourly"
        ),
        UsageError,
        "not a valid short name",
    ),
    (
        "field with a space",
        lambda c: c.components.data(
            1, start="2024-01-01", end="2024-01-02", fields=["W avg"], tz="UTC", gran="hourly"
        ),
        UsageError,
        "'W avg' is not a valid short name",
    ),
    (
        "fields of the wrong type",
        lambda c: c.components.data(
            1, start="2024-01-01", end="2024-01-02", fields=12, tz="UTC", gran="hourly"
        ),
        InvalidArgumentType,
        "fields must be",
    ),
    (
        "a field that is not a string",
        lambda c: c.components.data(
            1, start="2024-01-01", end="2024-01-02", fields=["W_avg", 3], tz="UTC", gran="hourly"
        ),
        InvalidArgumentType,
        "every field must be a string",
    ),
    (
        "negative id",
        lambda c: c.components.get(-5),
        UsageError,
        "component_id must be a positive integer, got -5",
    ),
    ("zero id", lambda c: c.sites.get(0), UsageError, "site_id must be a positive integer"),
    (
        "bool id",
        lambda c: c.clients.get(True),
        InvalidArgumentType,
        "client_id must be an int, not bool",
    ),
    (
        "string id",
        lambda c: c.components.get("54369"),
        InvalidArgumentType,
        "component_id must be an int, not str",
    ),
    (
        "float id",
        lambda c: c.partners.sites(1.5),
        InvalidArgumentType,
        "partner_id must be an int, not float",
    ),
    (
        "latest with a start",
        lambda c: c.components.data(1, fields="W_avg", tz="UTC", gran="latest", start="2024-01-01"),
        UsageError,
        "latest takes no start or end",
    ),
    (
        "latest with an end",
        lambda c: c.components.data(1, fields="W_avg", tz="UTC", gran="latest", end="2024-01-01"),
        UsageError,
        "latest takes no start or end",
    ),
    (
        "latest for a site",
        lambda c: c.sites.data(1, fields="W_avg", tz="UTC", gran="latest"),
        UsageError,
        "only available for component",
    ),
    (
        "range without an end",
        lambda c: c.components.data(1, fields="W_avg", tz="UTC", gran="5min", start="2024-01-01"),
        UsageError,
        "end is required",
    ),
    (
        "unparseable start",
        lambda c: c.components.data(1, start="yesterday", end="2024-01-02", **D),
        UsageError,
        "start 'yesterday' is not an ISO-8601",
    ),
    (
        "start of the wrong type",
        lambda c: c.components.data(1, start=20240101, end="2024-01-02", **D),
        InvalidArgumentType,
        "start must be a datetime",
    ),
    (
        "start far in the past",
        lambda c: c.components.data(1, start=datetime(1800, 1, 1), end=datetime(2024, 1, 2), **D),
        UsageError,
        "outside 1900..2200",
    ),
    (
        "bulk with a daily granularity",
        lambda c: c.partners.bulk_data(
            1, fields="Wh_sum", start="2024-01-01", end="2024-02-01", tz="UTC", gran="daily"
        ),
        UsageError,
        "bulk data is monthly only",
    ),
    (
        "bulk with latest",
        lambda c: c.partners.bulk_data(
            1, fields="Wh_sum", start=None, end=None, tz="UTC", gran="latest"
        ),
        UsageError,
        "latest",
    ),  # type: ignore[arg-type]
    (
        "updated_since older than 7 days",
        lambda c: c.partners.alerts(1, updated_since=datetime(2024, 5, 20)),
        UsageError,
        "at most 7 days",
    ),
    (
        "partner alerts without a filter",
        lambda c: c.partners.alerts(1),
        UsageError,
        "need updated_since",
    ),
    (
        "open_during backwards",
        lambda c: c.sites.alerts(1, open_during=("2024-02-01", "2024-01-01")),
        UsageError,
        "start must be before its end",
    ),
    (
        "open_during of the wrong shape",
        lambda c: c.sites.alerts(1, open_during=datetime(2024, 1, 1)),
        InvalidArgumentType,
        "(start, end) pair",
    ),  # type: ignore[arg-type]
    (
        "unknown alert status",
        lambda c: c.sites.alerts(1, status="pending"),
        UsageError,
        "status 'pending' is not one of: open, closed",
    ),
    (
        "unknown alert priority",
        lambda c: c.components.alerts(1, priority=["urgent"]),
        UsageError,
        "priority 'urgent'",
    ),
    (
        "field parameter clashing with tz",
        lambda c: c.components.data(
            1, start="2024-01-01", end="2024-01-02", field_params={"tz": "UTC"}, **D
        ),
        UsageError,
        "clashes with a standard argument",
    ),
    (
        "field parameter of the wrong type",
        lambda c: c.components.data(
            1, start="2024-01-01", end="2024-01-02", field_params={"modelType": ["a"]}, **D
        ),
        InvalidArgumentType,
        "must be a string, number or bool",
    ),
    (
        "empty node id",
        lambda c: c.partners.components(1, node_id=""),
        UsageError,
        "node_id must be a non-empty string",
    ),
    (
        "a URL too long to send",
        lambda c: c.components.data(
            1,
            start="2024-01-01",
            end="2024-01-02",
            fields=[f"F{i}_avg" for i in range(1200)],
            tz="UTC",
            gran="hourly",
        ),
        UsageError,
        "over the 8192 limit",
    ),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("case", "call", "error", "words"), CASES, ids=[c[0] for c in CASES])
async def test_bad_call_arguments(
    case: str, call: Case, error: type[Exception], words: str
) -> None:
    """Each bad call raises its typed error, naming the problem, with no request sent."""
    net = NoNetwork()
    async with _client(net) as client:
        with pytest.raises(error) as caught:
            await call(client)
    assert words in str(caught.value)
    assert net.calls == []


CONSTRUCTION: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    (
        "base URL without a scheme",
        lambda: LocusClient(auth=BearerToken("t-123456"), base_url="api.locusenergy.com"),
        UsageError,
        "needs an http:// or https:// scheme",
    ),
    (
        "plain http to a remote host",
        lambda: LocusClient(auth=BearerToken("t-123456"), base_url="http://api.locusenergy.com"),
        UsageError,
        "credentials would travel in clear",
    ),
    (
        "ftp base URL",
        lambda: LocusClient(auth=BearerToken("t-123456"), base_url="ftp://x.example"),
        UsageError,
        "scheme",
    ),
    (
        "auth of the wrong type",
        lambda: LocusClient(auth="my-token"),
        InvalidArgumentType,
        "auth must be a PasswordGrant",
    ),  # type: ignore[arg-type]
    (
        "max_concurrency zero",
        lambda: LocusClient(auth=BearerToken("t-123456"), max_concurrency=0),
        UsageError,
        "at least 1",
    ),
    (
        "max_concurrency a string",
        lambda: LocusClient(auth=BearerToken("t-123456"), max_concurrency="2"),
        InvalidArgumentType,
        "must be an int",
    ),  # type: ignore[arg-type]
    (
        "limiter and max_concurrency both",
        lambda: LocusClient(
            auth=BearerToken("t-123456"), max_concurrency=2, limiter=LocalLimiter(2)
        ),
        UsageError,
        "not both",
    ),
    (
        "a limit shorter than a bucket",
        lambda: LocusClient(auth=BearerToken("t-123456"), limits={"hourly": timedelta(minutes=30)}),
        UsageError,
        "not longer than one bucket",
    ),
    (
        "a limit for latest",
        lambda: LocusClient(auth=BearerToken("t-123456"), limits={"latest": timedelta(days=1)}),
        UsageError,
        "latest has no time range",
    ),
    (
        "a zero read timeout",
        lambda: Timeouts(read=0),
        UsageError,
        "Timeouts.read must be a positive number",
    ),
    (
        "negative retry attempts",
        lambda: RetryPolicy(attempts=-1),
        UsageError,
        "RetryPolicy.attempts",
    ),
    ("empty bearer token", lambda: BearerToken(""), UsageError, "token must not be empty"),
    (
        "backfill of nothing",
        lambda: BackfillSpec(
            fields=("W_avg",), start="2024-01-01", end="2024-01-02", tz="UTC", gran="hourly"
        ).check(),
        UsageError,
        "nothing to backfill",
    ),
    (
        "backfill of latest",
        lambda: BackfillSpec(
            fields=("W_avg",), start=None, end=None, tz="UTC", gran="latest", components=(1,)
        ).check(),
        UsageError,
        "latest",
    ),  # type: ignore[arg-type]
    (
        "backfill to xlsx",
        lambda: BackfillSpec(
            fields=("W_avg",),
            start=date(2024, 1, 1),
            end=date(2024, 1, 2),
            tz="UTC",
            gran="hourly",
            components=(1,),
            format="xlsx",
        ).check(),
        UsageError,
        "format must be parquet or csv",
    ),  # type: ignore[arg-type]
    *[
        (f"client {name}", _locus(**kwargs), error, words)
        for name, kwargs, error, words in [
            (
                "port out of range",
                {"base_url": "http://127.0.0.1:99999"},
                UsageError,
                "not a valid URL",
            ),
            (
                "port not a number",
                {"base_url": "http://127.0.0.1:abc"},
                UsageError,
                "not a valid URL",
            ),
            ("port zero", {"base_url": "http://127.0.0.1:0"}, UsageError, "from 1 to 65535"),
            ("open IPv6 bracket", {"base_url": "http://[::1"}, UsageError, "not a valid URL"),
            (
                "a .localhost name",
                {"base_url": "http://anything.localhost"},
                UsageError,
                "plain http",
            ),
            (
                "localhost.localdomain",
                {"base_url": "http://localhost.localdomain"},
                UsageError,
                "plain http",
            ),
            (
                "a space in the host",
                {"base_url": "https://a b.example"},
                UsageError,
                "not allowed in a URL",
            ),
            ("a user in the URL", {"base_url": "https://u:p@x.example"}, UsageError, "user name"),
            ("an empty port", {"base_url": "https://x.example:"}, UsageError, "empty port"),
            ("a base URL not a str", {"base_url": 5}, UsageError, "base_url must be a non-empty"),
            (
                "timeouts a number",
                {"timeouts": 5},
                InvalidArgumentType,
                "timeouts must be a Timeouts",
            ),
            ("headers a number", {"headers": 5}, InvalidArgumentType, "headers must be a mapping"),
            (
                "a header value not a str",
                {"headers": {"X-A": 5}},
                InvalidArgumentType,
                "must be a str",
            ),
            (
                "a header name with a space",
                {"headers": {"X A": "1"}},
                UsageError,
                "not a valid header name",
            ),
            (
                "a header value with CRLF",
                {"headers": {"X-A": "1\r\nX-B: 2"}},
                UsageError,
                "line break",
            ),
            (
                "verify a missing file",
                {"verify": "nope"},
                UsageError,
                "cannot load the CA bundle 'nope'",
            ),
            ("verify a number", {"verify": 5}, InvalidArgumentType, "verify must be True, False"),
            (
                "max_response_bytes negative",
                {"max_response_bytes": -1},
                UsageError,
                "max_response_bytes must be at least 1",
            ),
            (
                "max_response_bytes a str",
                {"max_response_bytes": "9"},
                InvalidArgumentType,
                "max_response_bytes must be an int",
            ),
            (
                "transport a str",
                {"transport": "asgi"},
                InvalidArgumentType,
                "transport must be an httpx.AsyncBaseTransport",
            ),
            (
                "retry a dict",
                {"retry": {"attempts": 2}},
                InvalidArgumentType,
                "retry must be a RetryPolicy",
            ),
            (
                "limiter an int",
                {"limiter": 2},
                InvalidArgumentType,
                "limiter must be a LocalLimiter",
            ),
            ("clock a number", {"clock": 5}, InvalidArgumentType, "clock must be callable"),
            ("sleep a number", {"sleep": 0}, InvalidArgumentType, "sleep must be callable"),
            ("rng an int", {"rng": 7}, InvalidArgumentType, "rng must be a random.Random"),
            ("strict a str", {"strict": "no"}, InvalidArgumentType, "strict must be True or False"),
            (
                "validate_fields a str",
                {"validate_fields": "yes"},
                InvalidArgumentType,
                "validate_fields must be True or False",
            ),
            (
                "allow_insecure_http 1",
                {"allow_insecure_http": 1},
                InvalidArgumentType,
                "allow_insecure_http must be True or False",
            ),
        ]
    ],
    ("Timeouts NaN", lambda: Timeouts(read=float("nan")), UsageError, "Timeouts.read"),
    (
        "Timeouts infinite",
        lambda: Timeouts(total=float("inf")),
        UsageError,
        "Timeouts.total must be a positive number",
    ),
    (
        "RetryPolicy NaN",
        lambda: RetryPolicy(initial=float("nan")),
        UsageError,
        "RetryPolicy.initial",
    ),
    (
        "RetryPolicy fractional attempts",
        lambda: RetryPolicy(attempts=2.5),
        UsageError,
        "RetryPolicy.attempts must be an int",
    ),
    ("RetryPolicy zero attempts", lambda: RetryPolicy(attempts=0), UsageError, "at least 1"),
    ("RetryPolicy negative wire hold", lambda: RetryPolicy(wire_hold=-1), UsageError, "wire_hold"),
    ("LocalLimiter a float", lambda: LocalLimiter(1.5), InvalidArgumentType, "must be an int"),  # type: ignore[arg-type]
    (
        "AdaptiveLimiter initial over ceiling",
        lambda: AdaptiveLimiter(2, initial=3),
        UsageError,
        "initial must not exceed",
    ),
    (
        "RedisLimiter a str lease",
        lambda: RedisLimiter("redis://127.0.0.1:1/0", key="k", lease="10"),
        InvalidArgumentType,
        "lease must be a number",
    ),  # type: ignore[arg-type]
    (
        "RedisLimiter a zero poll",
        lambda: RedisLimiter("redis://127.0.0.1:1/0", key="k", poll=0),
        UsageError,
        "poll must be more than 0",
    ),
    (
        "RedisLimiter a port out of range",
        lambda: RedisLimiter("redis://127.0.0.1:99999/0", key="k"),
        UsageError,
        "is not valid",
    ),
    (
        "RedisLimiter an http URL",
        lambda: RedisLimiter("http://127.0.0.1:6379", key="k"),
        UsageError,
        "must start with redis://",
    ),
    (
        "RedisTokenStore a negative lock timeout",
        lambda: RedisTokenStore("redis://127.0.0.1:1/0", key="k", lock_timeout=-1),
        UsageError,
        "lock_timeout must be more than 0",
    ),
    (
        "SolarNetClient strict a str",
        lambda: SolarNetClient(credentials=None, strict="yes"),
        InvalidArgumentType,
        "strict must be True or False",
    ),  # type: ignore[arg-type]
    (
        "SolarNetClient a bad port",
        lambda: SolarNetClient(credentials=None, base_url="https://x.example:99999"),
        UsageError,
        "not a valid URL",
    ),
    (
        "Faults a negative latency",
        lambda: Faults(latency=-1),
        UsageError,
        "Faults.latency must be at least 0",
    ),
    (
        "Faults a rate over 1",
        lambda: Faults(drops=2),
        UsageError,
        "Faults.drops must be between 0 and 1",
    ),
    (
        "Faults paths a str",
        lambda: Faults(paths="/v3/"),
        InvalidArgumentType,
        "Faults.paths must be a tuple",
    ),  # type: ignore[arg-type]
    (
        "Simulator allowance zero",
        lambda: Simulator(allowance=0),
        UsageError,
        "allowance must be at least 1",
    ),
    (
        "Simulator faults a dict",
        lambda: Simulator(faults={"drops": 1}),
        InvalidArgumentType,
        "faults must be a Faults",
    ),  # type: ignore[arg-type]
    ("spec fields a number", lambda: _spec(fields=5), InvalidArgumentType, "fields must be a list"),
    (
        "spec node_types numbers",
        lambda: _spec(node_types=(5,)),
        InvalidArgumentType,
        "node_types must be names",
    ),
    (
        "spec components a str",
        lambda: _spec(components="54369"),
        InvalidArgumentType,
        "components must be a list or tuple",
    ),
    (
        "spec a bool id",
        lambda: _spec(components=[True]),
        InvalidArgumentType,
        "component id must be an int",
    ),
    (
        "spec start a number",
        lambda: _spec(start=20240101),
        InvalidArgumentType,
        "start must be a datetime",
    ),
    ("spec tz a number", lambda: _spec(tz=0), InvalidArgumentType, "tz must be a str"),
    ("spec gran a number", lambda: _spec(gran=5), InvalidArgumentType, "gran must be a str"),
    (
        "backfill out empty",
        lambda: _backfill(""),
        UsageError,
        "out must name a directory; it is empty",
    ),
    ("backfill out a number", lambda: _backfill(5), UsageError, "out must be a path"),
    (
        "backfill out a file",
        lambda: _backfill("/dev/null"),
        UsageError,
        "is a file, not a directory",
    ),
    (
        "backfill progress a number",
        lambda: _backfill("o", progress=5),
        InvalidArgumentType,
        "progress must be callable",
    ),
    (
        "backfill repair a str",
        lambda: _backfill("o", repair="yes"),
        InvalidArgumentType,
        "repair must be True or False",
    ),
    (
        "backfill priority an int",
        lambda: _backfill("o", priority=3),
        InvalidArgumentType,
        "priority must be a Priority",
    ),
    (
        "backfill spec a dict",
        lambda: Backfill(_locus()(), {"fields": "W_avg"}, "o"),
        InvalidArgumentType,
        "spec must be a BackfillSpec",
    ),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("case", "build", "error", "words"), CONSTRUCTION, ids=[c[0] for c in CONSTRUCTION]
)
def test_bad_configuration(
    case: str, build: Callable[[], Any], error: type[Exception], words: str
) -> None:
    """Misconfiguration fails at construction, with the problem named."""
    with pytest.raises(error) as caught:
        build()
    assert words in str(caught.value)


def _data(**flags: str | None) -> list[str]:
    """``data`` with valid arguments, but for ``flags`` (``site="2"`` adds ``--site 2``;
    ``None`` leaves a flag out)."""
    given: dict[str, str | None] = {
        "component": "1", "fields": "W_avg", "tz": "UTC", "gran": "hourly",
        "start": "2024-01-01", "end": "2024-01-02",
    }  # fmt: skip
    given.update(flags)
    return ["data"] + [
        part
        for name, value in given.items()
        if value is not None
        for part in (f"--{name.replace('_', '-')}", value)
    ]


BACKFILL_ARGS = [
    "backfill", "--component", "1", "--fields", "W_avg", "--tz", "UTC", "--gran", "hourly",
    "--start", "2024-01-01", "--end", "2024-01-02",
]  # fmt: skip

CLI_CASES = [
    (
        _data(component="-3", start=None, end=None),
        "must be a positive integer",
    ),
    (
        _data(component="abc", start=None, end=None),
        "not an integer",
    ),
    (
        _data(end="2024-01-02T00:00:00+02:00"),
        "mix a naive and an aware",
    ),
    (
        _data(fields=""),
        "not a valid short name",
    ),
    (
        _data(start=None, end=None, site="2"),
        "not allowed with argument",
    ),
    (["alerts", "--site", "1", "--status", "pending"], "invalid choice"),
    (["alerts", "--partner", "1", "--updated-since", "2020-01-01T00:00:00"], "at most 7 days"),
    (
        [
            "backfill",
            "--fields",
            "W_avg",
            "--tz",
            "UTC",
            "--gran",
            "hourly",
            "--out",
            "x",
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-02",
        ],
        "nothing to backfill",
    ),
    (
        [
            "backfill",
            "--component",
            "1",
            "--fields",
            "W_avg",
            "--tz",
            "UTC",
            "--gran",
            "latest",
            "--out",
            "x",
        ],
        "needs --start and --end",
    ),
    (
        [
            "backfill",
            "--component",
            "1",
            "--fields",
            "W_avg",
            "--tz",
            "UTC",
            "--gran",
            "hourly",
            "--out",
            "x",
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-02",
            "--format",
            "xlsx",
        ],
        "invalid choice",
    ),
    (["sites", "--partner", "1", "--base-url", "api.locusenergy.com"], "scheme"),
    *[
        (["sites", "--partner", "1", "--base-url", url], words)
        for url, words in [
            ("http://127.0.0.1:99999", "not a valid URL"),
            ("http://127.0.0.1:abc", "not a valid URL"),
            ("http://[::1", "not a valid URL"),
            ("http://127.0.0.1:0", "from 1 to 65535"),
            ("http://anything.localhost", "plain http"),
            ("http://10.0.0.1:8080", "plain http"),
            ("https://a b", "not allowed in a URL"),
            ("https://x.example/?q=1", "query or fragment"),
            ("", "must be a non-empty string"),
        ]
    ],
    ([*BACKFILL_ARGS, "--out", ""], "it is empty"),
    ([*BACKFILL_ARGS, "--out", "   "], "it is empty"),
    ([*BACKFILL_ARGS, "--out", "/dev/null"], "is a file"),
    ([*BACKFILL_ARGS, "--out", "o", "--base-url", "http://127.0.0.1:99999"], "not a valid URL"),
    ([*BACKFILL_ARGS, "--out", "o", "--max-concurrency", "0"], "must be a positive integer"),
    (["simulate", "--port", "99999"], "must be a port from 1 to 65535"),
    (["simulate", "--port", "0"], "must be a port from 1 to 65535"),
    (["simulate", "--port", "http"], "'http' must be a port from 1 to 65535"),
    (["simulate", "--host", "example.com"], "is not an IP address"),
    (["simulate", "--latency", "-1"], "0 or more"),
    (["simulate", "--latency", "nan"], "0 or more"),
    (["simulate", "--token-lifetime", "0"], "must be more than 0"),
    (["demo", "--latency", "inf"], "0 or more"),
    (["demo", "--out", ""], "it is empty"),
    ([*BACKFILL_ARGS, "--out", "/" + "x" * 5000], "cannot be used (File name too long)"),
    (["backfill", "--fields", "W_avg", "--tz", "UTC", "--gran", "5min"], "required: --out"),
    (
        _data(tz="Mars/Base"),
        "not a known IANA time zone",
    ),
    (
        _data(gran="2min"),
        "unknown granularity '2min'",
    ),
    (
        _data(start="2024-01-02", end="2024-01-01"),
        "must be before --end",
    ),
    (
        _data(fields="W avg"),
        "not a valid short name",
    ),
    (
        _data(gran="latest", end=None),
        "latest takes no start",
    ),
    (["sites", "--partner", "1", "--base-url", "api.locusenergy.com"], "scheme"),
    (["sites", "--partner", "1", "--base-url", "http://api.locusenergy.com"], "in clear"),
    (
        ["alerts", "--partner", "1"],
        "need --updated-since (at most 7 days ago) or --open-during START END",
    ),
    (["nonsense"], "invalid choice"),
]


@pytest.mark.parametrize(
    ("argv", "words"),
    CLI_CASES,
    ids=[" ".join(a[:2]) + f"-{i}" for i, (a, _) in enumerate(CLI_CASES)],
)
def test_bad_cli_input_is_one_line_and_exit_2(
    argv: list[str],
    words: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CLI answers bad input with exit code 2 and one line, never a traceback, and
    writes nothing (run in an empty directory that must stay empty)."""
    monkeypatch.chdir(tmp_path)
    net = NoNetwork()
    err = io.StringIO()
    env = {"LOCUS_ACCESS_TOKEN": "tok-123456", "LOCUS_BASE_URL": "http://localhost"}
    code = main(argv, env=env, stdout=io.StringIO(), stderr=err, transport=net.transport)
    text = err.getvalue() + capsys.readouterr().err
    assert code == 2
    assert words in text
    assert "Traceback" not in text
    assert (
        len(
            [
                line
                for line in text.splitlines()
                if line.startswith("locus-async") and "error" in line
            ]
        )
        == 1
    )
    assert net.calls == []
    assert list(tmp_path.iterdir()) == []


def test_a_comma_string_of_fields_is_a_list_of_fields() -> None:
    """``BackfillSpec(fields="W_avg")`` is the field W_avg, not the letters of its name."""
    assert _spec(fields="W_avg").fields == ("W_avg",)
    assert _spec(fields="W_avg, Wh_sum").fields == ("W_avg", "Wh_sum")
    assert _spec(components=54369, node_types="METER").node_types == ("METER",)
