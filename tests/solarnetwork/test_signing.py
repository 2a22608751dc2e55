"""SNWS2 signing: every vector SolarNetwork's own test suites publish, and the rules behind them.

Vectors come from SolarNetwork's Java (``AuthorizationV2BuilderTests``,
``Snws2AuthorizationBuilderTests``) and JavaScript (``authV2`` tests) suites; all use token
``test-token-id`` / secret ``test-token-secret`` at 2017-04-25T14:30:00Z unless noted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, date, datetime, timedelta

import pytest

from locus_async._core.http import Request
from locus_async.errors import InvalidArgumentType, UsageError
from locus_async.solarnetwork import (
    Snws2Credentials,
    canonical_query,
    canonical_request,
    digest_header,
    host_header,
    http_date,
    signing_key,
    snws2_authorization,
    string_to_sign,
)
from locus_async.solarnetwork._core.signing import EMPTY_BODY_SHA256, signed_inputs
from locus_async.solarnetwork.auth import Snws2Signer

D = datetime(2017, 4, 25, 14, 30, tzinfo=UTC)
DS = "Tue, 25 Apr 2017 14:30:00 GMT"
KEY_20170425 = "bf7885e8bd107a79f5c6e13001a4fa15fbd43221ad39ca47fde96191d302dbf4"


def _digest(body: bytes) -> str:
    return "sha-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def _sign(
    *,
    headers: dict[str, str],
    method: str = "GET",
    path: str = "/api/test",
    query: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    key: bytes | None = None,
) -> str:
    return snws2_authorization(
        method=method,
        path=path,
        query=query or [],
        headers=headers,
        body=body,
        token_id="test-token-id",
        token_secret=None if key else "test-token-secret",
        key=key,
        date=D,
    )


def test_the_issue_contract_example() -> None:
    """The example of the signing contract produces the documented header."""
    result = snws2_authorization(
        method="GET",
        path="/api/query",
        query=[("foo", "bar"), ("bim", "bam")],
        headers={"Host": "localhost", "Date": "Tue, 25 Apr 2017 14:30:00 GMT"},
        body=b"",
        token_id="test-token-id",
        token_secret="test-token-secret",
        date=datetime(2017, 4, 25, 14, 30, tzinfo=UTC),
    )
    assert result == (
        "SNWS2 Credential=test-token-id,SignedHeaders=date;host,"
        "Signature=c597ed8061d9d12e12ead3d8d6fc03b28a877e8639548f31556b4760be09a4b8"
    )


JSON_HELLO = b'{"hello":"world"}'
TEXT_HELLO = b"Hello."

# (name, request, expected SignedHeaders, expected signature)
VECTORS = [
    (
        "simpleGet",
        {"headers": {"Host": "localhost", "Date": DS}},
        "date;host",
        "4739139d3d370f147b6585795c309b1c6d7d7f59943081f7dd943f689cfa59a3",
    ),
    (
        "xSnDate",
        {"headers": {"Host": "localhost", "X-SN-Date": DS}},
        "host;x-sn-date",
        "c14fe9f67560fb9a37d2aa7c40b40c260a5936f999877e2469b8ddb1da7c0eb9",
    ),
    (
        "queryParams",
        {
            "path": "/api/query",
            "query": [("foo", "bar"), ("bim", "bam")],
            "headers": {"Host": "localhost", "Date": DS},
        },
        "date;host",
        "c597ed8061d9d12e12ead3d8d6fc03b28a877e8639548f31556b4760be09a4b8",
    ),
    (
        "queryParamsWithEscapedCharacters",
        {
            "path": "/api/query",
            "query": [("foo", "/path/*")],
            "headers": {"Host": "localhost", "X-SN-Date": DS},
        },
        "host;x-sn-date",
        "6e5ae54fe70543a590335a5ab9a29dc089dba4ac75fe15875e716f226c74b6e0",
    ),
    (
        "simpleGet:proxy (default host)",
        {"headers": {"Host": "data.solarnetwork.net", "X-SN-Date": DS}},
        "host;x-sn-date",
        "e70f99fd237e74912ac594b70bda27a84c1d41c4a3c7050d80c729496c7bff1f",
    ),
    (
        "simpleGetWithNullContentType",
        {"headers": {"Host": "localhost", "Date": DS, "Content-Type": ""}},
        "content-type;date;host",
        "00f309ee00978dc772cb01aba857d57983a7d3ac3b9ab8916a7702c61d6e07b6",
    ),
    (
        "url (http, default port)",
        {"path": "/path", "headers": {"Host": "example.com", "Date": DS}},
        "date;host",
        "0ba4f4469e9e0d48b7ca046e189032881c08e67a00c007fadb00242c4301fe31",
    ),
    (
        "url:withoutHost",
        {"path": "/path", "headers": {"Host": "data.solarnetwork.net", "Date": DS}},
        "date;host",
        "1fdfdc7954cb386b97991736cf70c0c8e86c9d6ea28c74e9333678f03c075730",
    ),
    (
        "url:queryParams (host with port 8443)",
        {
            "path": "/path",
            "query": [("foo", "bar"), ("bim", "bam")],
            "headers": {"Host": "example.com:8443", "Date": DS},
        },
        "date;host",
        "c3a429e748d2ecd1f734c5a9f562e0c353f4a0d9a48a9492c0637178bb1f15dc",
    ),
    (
        "url:httpsImpliedPort:forced (host:443)",
        {"path": "/path", "headers": {"Host": "example.com:443", "Date": DS}},
        "date;host",
        "5691e0f9366084fd81d50bba679e6c57fbbc85faca87a154ad3e1b29afb2e818",
    ),
    (
        "url:wsNonStandardPort (host:8080)",
        {"path": "/path", "headers": {"Host": "example.com:8080", "Date": DS}},
        "date;host",
        "6d5ca23447d47afaee7b4e42680b3a6bfaf0e23aa410d2b9f27f54f14d63f7a7",
    ),
    (
        "key:set (saved key, no secret)",
        {
            "path": "/test/path",
            "headers": {"Host": "data.solarnetwork.net", "X-SN-Date": DS},
            "key": bytes.fromhex(KEY_20170425),
        },
        "host;x-sn-date",
        "79cb002ee35b5cfe2d54421de6550cdcfc39c9defae874cc93ee74e426e81c23",
    ),
    (
        "postJsonWithSnDate",
        {
            "method": "POST",
            "path": "/api/post",
            "body": JSON_HELLO,
            "headers": {
                "Host": "localhost",
                "X-SN-Date": DS,
                "Content-Type": "application/json; charset=UTF-8",
                "Digest": _digest(JSON_HELLO),
            },
        },
        "content-type;digest;host;x-sn-date",
        "17b50462a9db77e569bd74676c550c447be07f605f191a39ca481efaa15e9879",
    ),
    (
        "simplePostWithComputedDigest",
        {
            "method": "POST",
            "path": "/api/post",
            "body": TEXT_HELLO,
            "headers": {
                "Host": "localhost",
                "Date": DS,
                "Content-Type": "text/plain;charset=UTF-8",
                "Digest": _digest(TEXT_HELLO),
            },
        },
        "content-type;date;digest;host",
        "3da29e2ceb916ad31b4ffe920afcf94c879d0c4abaaed92941875ac4549f3cf6",
    ),
]


@pytest.mark.parametrize(
    ("name", "request_", "signed", "signature"), VECTORS, ids=[v[0] for v in VECTORS]
)
def test_published_vectors(name: str, request_: dict, signed: str, signature: str) -> None:
    """Every vector SolarNetwork's own suites publish signs identically."""
    assert _sign(**request_) == (
        f"SNWS2 Credential=test-token-id,SignedHeaders={signed},Signature={signature}"
    )


def test_simple_post_vector_from_its_body_hash() -> None:
    """simplePost: the reference gives only the body's SHA-256, so sign from the hash."""
    body_hash = "226e49e13d16e5e8aa0d62e58cd63361bf097d3e2b2444aa3044334628a2e8de"
    digest = "sha-256=" + base64.b64encode(bytes.fromhex(body_hash)).decode()
    headers = {
        "Host": "localhost",
        "Date": DS,
        "Content-Type": "application/json;charset=UTF-8",
        "Digest": digest,
    }
    canonical = canonical_request("POST", "/api/post", [], headers, body_hash)
    assert canonical == (
        "POST\n/api/post\n\ncontent-type:application/json;charset=UTF-8\n"
        f"date:{DS}\ndigest:{digest}\nhost:localhost\ncontent-type;date;digest;host\n{body_hash}"
    )
    key = signing_key("test-token-secret", D.date())
    signature = hmac.new(key, string_to_sign(canonical, D).encode(), hashlib.sha256).hexdigest()
    assert signature == "ad609dd757c1f7f08a519919ab5e109ec61477cf612c6a0d29cac66d54c3987e"


def test_content_md5_vector() -> None:
    """The Content-MD5 vector signs identically."""
    body_hash = "226e49e13d16e5e8aa0d62e58cd63361bf097d3e2b2444aa3044334628a2e8de"
    headers = {
        "Host": "localhost",
        "Date": DS,
        "Content-MD5": "foobar",
        "Content-Type": "application/json;charset=UTF-8",
    }
    canonical = canonical_request("POST", "/api/post", [], headers, body_hash)
    assert canonical.split("\n")[3:7] == [
        "content-md5:foobar",
        "content-type:application/json;charset=UTF-8",
        f"date:{DS}",
        "host:localhost",
    ]
    key = signing_key("test-token-secret", D.date())
    signature = hmac.new(key, string_to_sign(canonical, D).encode(), hashlib.sha256).hexdigest()
    assert signature == "c031b1470d2410d60676996380c3bdc5f7edf289f724fb1b5fa1a29dce02ea57"


def test_canonical_request_and_string_to_sign_of_simple_get() -> None:
    """A simple GET's canonical request and string to sign match the reference."""
    canonical = canonical_request(
        "GET", "/api/test", [], {"Host": "localhost", "Date": DS}, EMPTY_BODY_SHA256
    )
    assert canonical == (
        f"GET\n/api/test\n\ndate:{DS}\nhost:localhost\ndate;host\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert string_to_sign(canonical, D) == (
        "SNWS2-HMAC-SHA256\n20170425T143000Z\n"
        "1b5cf4c03e8e85f1c08a01ea1d4bd89cc550fc964134b59bb0accf9e5dbb26bf"
    )


def test_signing_keys() -> None:
    """Signing keys derive as the reference's vectors say."""
    assert signing_key("test-token-secret", date(2017, 4, 25)).hex() == KEY_20170425
    assert signing_key("ABC123", date(2017, 1, 1)).hex() == (
        "1f96b28b651285e49d06989aebaee169fa67a5f6a07fb72a8325fce83b425ad6"
    )


# -- the rules behind the vectors ----------------------------------------------------------


def test_canonical_query_escapes_everything_but_unreserved_with_percent20() -> None:
    """The canonical query escapes all but unreserved characters, space as %20."""
    assert canonical_query([("q", "a b+c/d*e~f_g.h-i")]) == "q=a%20b%2Bc%2Fd%2Ae~f_g.h-i"
    assert canonical_query([("a[0].name", "x=y&z")]) == "a%5B0%5D.name=x%3Dy%26z"


def test_canonical_query_keeps_repeated_names_in_order() -> None:
    """Repeated names keep their order in the canonical query."""
    params = [("sourceIds", "/b"), ("max", "10"), ("sourceIds", "/a"), ("sourceIds", "/c")]
    assert canonical_query(params) == "max=10&sourceIds=%2Fb&sourceIds=%2Fa&sourceIds=%2Fc"


def test_canonical_query_encodes_non_ascii_as_utf8_upper_hex() -> None:
    """Non-ASCII names and values are UTF-8 in upper-case hex."""
    assert canonical_query([("name", "Grüße ✓")]) == "name=Gr%C3%BC%C3%9Fe%20%E2%9C%93"
    assert canonical_query([("ключ", "é")]) == "%D0%BA%D0%BB%D1%8E%D1%87=%C3%A9"


def test_canonical_query_sorts_names_as_java_does() -> None:
    """Java compares UTF-16 code units: a surrogate pair (U+1F600) sorts before U+FF21,
    where code-point order would put it after."""
    emoji, fullwidth = "\U0001f600", "\uff21"
    assert canonical_query([(fullwidth, "1"), (emoji, "2")]) == ("%F0%9F%98%80=2&%EF%BC%A1=1")
    assert canonical_query([("b", "1"), ("B", "2"), ("a", "3")]) == "B=2&a=3&b=1"


def test_empty_values_and_no_parameters() -> None:
    """Empty values keep their '=' and no parameters give an empty query."""
    assert canonical_query([("flag", "")]) == "flag="
    assert canonical_query([]) == ""


def test_form_fields_are_signed_as_parameters_with_the_empty_body_hash() -> None:
    """Form fields are signed as parameters, with the empty body's hash."""
    headers = {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}
    body = b"topic=SetControlParameter&nodeId=123&parameters%5B0%5D.name=%2Fswitch%2F1"
    params, body_hash = signed_inputs([("resultMaxWait", "5")], headers, body)
    assert body_hash == EMPTY_BODY_SHA256
    assert canonical_query(params) == (
        "nodeId=123&parameters%5B0%5D.name=%2Fswitch%2F1&resultMaxWait=5&topic=SetControlParameter"
    )


def test_form_post_signature_equals_the_query_string_signature() -> None:
    """A form post signs like a GET with the same parameters (plus its content type)."""
    headers = {"Host": "localhost", "Date": DS, "Content-Type": "application/x-www-form-urlencoded"}
    as_form = _sign(method="POST", path="/api/post", headers=headers, body=b"b=2&a=1%201")
    as_query = _sign(
        method="POST", path="/api/post", headers=headers, query=[("a", "1 1"), ("b", "2")]
    )
    assert as_form == as_query


def test_json_body_is_hashed_as_sent() -> None:
    """A JSON body is hashed byte for byte as sent."""
    headers = {"Content-Type": "application/json"}
    _, body_hash = signed_inputs([], headers, b'{"foo":"bar"}\n')
    assert body_hash == hashlib.sha256(b'{"foo":"bar"}\n').hexdigest()


def test_signed_headers_are_lowercased_deduplicated_sorted_and_trimmed() -> None:
    """Signed header names are lower-cased, deduplicated and sorted; values trimmed."""
    result = _sign(headers={"X-SN-Date": f"  {DS} ", "HOST": "localhost"})
    assert result == _sign(headers={"host": "localhost", "x-sn-date": DS})
    assert "SignedHeaders=host;x-sn-date," in result


def test_raw_path_is_signed_exactly() -> None:
    """The path stays percent-encoded: /a%20b and /a b are different requests."""
    headers = {"Host": "localhost", "Date": DS}
    assert _sign(path="/api/a%20b", headers=headers) != _sign(path="/api/a b", headers=headers)


def test_http_date_is_rfc1123_gmt_with_two_digit_day() -> None:
    """Dates are RFC 1123 in GMT with a two-digit day, whatever the input zone."""
    assert http_date(datetime(2017, 5, 2, 3, 4, 5, 999, tzinfo=UTC)) == (
        "Tue, 02 May 2017 03:04:05 GMT"
    )
    offset = datetime(2017, 4, 25, 16, 30, tzinfo=UTC).astimezone(
        __import__("datetime").timezone(timedelta(hours=2))
    )
    assert http_date(offset) == "Tue, 25 Apr 2017 16:30:00 GMT"


def test_http_date_names_every_weekday_and_month_in_english() -> None:
    """Built without strftime('%a'), so no locale can turn Tue into Di."""
    days = [http_date(datetime(2024, 1, 1 + i, tzinfo=UTC))[:3] for i in range(7)]
    assert days == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    months = [http_date(datetime(2024, m, 1, tzinfo=UTC))[8:11] for m in range(1, 13)]
    assert months == [
        "Jan",
        "Feb",
        "Mar",
        "Apr",
        "May",
        "Jun",
        "Jul",
        "Aug",
        "Sep",
        "Oct",
        "Nov",
        "Dec",
    ]


def test_digest_header() -> None:
    """The Digest header is sha-256 in base64."""
    assert digest_header(b"Hello.") == (
        "sha-256="
        + base64.b64encode(
            bytes.fromhex("2d8bd7d9bb5f85ba643f0110d50cb506a1fe439e769a22503193ea6046bb87f7")
        ).decode()
    )


def test_secret_or_key_is_required() -> None:
    """Signing needs a token secret or a signing key."""
    with pytest.raises(ValueError, match="token_secret or a signing key"):
        snws2_authorization(
            method="GET", path="/", query=[], headers={}, body=b"", token_id="t", date=D
        )


# -- the signer the client uses ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "host"),
    [
        ("https://data.solarnetwork.net", "data.solarnetwork.net"),
        ("https://data.solarnetwork.net:443", "data.solarnetwork.net"),
        ("http://127.0.0.1:8123", "127.0.0.1:8123"),
        ("http://localhost:80", "localhost"),
        ("https://Example.COM:8443/base", "example.com:8443"),
        ("http://[::1]:9000", "[::1]:9000"),
    ],
)
def test_host_header_has_the_port_only_when_not_default(base_url: str, host: str) -> None:
    """The host header has the port only when it is not the scheme's default."""
    assert host_header(base_url) == host


def _signer(base_url: str = "https://example.com:8443", **creds: object) -> Snws2Signer:
    credentials = Snws2Credentials(
        "test-token-id", **creds or {"token_secret": "test-token-secret"}
    )  # type: ignore[arg-type]
    return Snws2Signer(credentials, base_url=base_url)


def test_signer_adds_host_date_digest_and_a_verifiable_authorization() -> None:
    """The signer adds host, date and digest, and an Authorization that verifies."""
    signer = _signer("https://example.com:8443/proxy")
    body = b'{"nodeId":1}'
    request = Request(
        "POST",
        "/solaruser/api/v1/sec/instr/add",
        (("a", "1"),),
        (("Content-Type", "application/json;charset=UTF-8"),),
        body,
    )
    signed = dict(signer.sign(request, D.timestamp()).headers)
    assert signed["Host"] == "example.com:8443"
    assert signed["X-SN-Date"] == DS
    assert signed["Digest"] == _digest(body)
    expected = snws2_authorization(
        method="POST",
        path="/proxy/solaruser/api/v1/sec/instr/add",
        query=[("a", "1")],
        headers={
            "host": "example.com:8443",
            "x-sn-date": DS,
            "digest": _digest(body),
            "content-type": "application/json;charset=UTF-8",
        },
        body=body,
        token_id="test-token-id",
        token_secret="test-token-secret",
        date=D,
    )
    assert signed["Authorization"] == expected
    assert "SignedHeaders=content-type;digest;host;x-sn-date," in expected


def test_signer_sends_no_digest_for_forms_and_gets() -> None:
    """Forms and GETs carry no Digest header."""
    signer = _signer()
    form = Request(
        "POST", "/x", (), (("Content-Type", "application/x-www-form-urlencoded"),), b"a=1"
    )
    get = Request("GET", "/x")
    for request, names in ((form, "content-type;host;x-sn-date"), (get, "host;x-sn-date")):
        headers = dict(signer.sign(request, D.timestamp()).headers)
        assert "Digest" not in headers
        assert f"SignedHeaders={names}," in headers["Authorization"]


def test_signer_signs_extra_x_sn_headers_and_replaces_a_stale_authorization() -> None:
    """Extra x-sn-* headers are signed; a stale Authorization is replaced, once."""
    signer = _signer()
    request = Request("GET", "/x", headers=(("X-SN-Trace", "abc"), ("Authorization", "old")))
    headers = signer.sign(request, D.timestamp()).headers
    assert [v for n, v in headers if n == "Authorization"] != ["old"]
    assert len([n for n, _ in headers if n.lower() == "authorization"]) == 1
    assert "SignedHeaders=host;x-sn-date;x-sn-trace," in dict(headers)["Authorization"]


def test_signer_derives_a_key_once_per_day() -> None:
    """The signer derives its key once per UTC day."""
    signer = _signer()
    for minutes in range(0, 560, 7):  # 14:30 to 23:50, one UTC day
        signer.sign(Request("GET", "/x"), D.timestamp() + minutes * 60)
    assert signer.keys_derived == 1
    signer.sign(Request("GET", "/x"), D.timestamp() + 86400)
    assert signer.keys_derived == 2


def test_a_saved_key_signs_for_seven_days_then_refuses() -> None:
    """A saved signing key signs for seven days, then is refused."""
    key = Snws2Credentials.derive_key("test-token-secret", D.date())
    signer = _signer(signing_key=key, key_date=D.date())
    same = _signer().sign(Request("GET", "/x"), D.timestamp()).headers
    assert signer.sign(Request("GET", "/x"), D.timestamp()).headers == same
    signer.sign(Request("GET", "/x"), D.timestamp() + 6 * 86400)
    with pytest.raises(UsageError, match="signs requests dated 2017-04-25 to 2017-05-01"):
        signer.sign(Request("GET", "/x"), D.timestamp() + 7 * 86400)
    with pytest.raises(UsageError):
        signer.sign(Request("GET", "/x"), D.timestamp() - 86400)


def test_credentials_never_show_their_secret() -> None:
    """Credentials and the signer never show the secret or the key in reprs."""
    creds = Snws2Credentials("tok-id", token_secret="very-secret-value")
    assert "very-secret-value" not in repr(creds)
    assert "very-secret-value" not in repr(Snws2Signer(creds, base_url="https://x.example"))
    assert creds.secrets() == ("very-secret-value",)
    keyed = Snws2Credentials("tok-id", signing_key=b"k" * 32, key_date=date(2024, 1, 1))
    assert (b"k" * 32).hex() not in repr(keyed)
    assert keyed.secrets() == ((b"k" * 32).hex(),)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"token_id": "", "token_secret": "s"}, InvalidArgumentType),
        ({"token_id": "a,b", "token_secret": "s"}, UsageError),
        ({"token_id": "t"}, UsageError),
        ({"token_id": "t", "token_secret": "s", "signing_key": b"k" * 32}, UsageError),
        (
            {"token_id": "t", "signing_key": b"short", "key_date": date(2024, 1, 1)},
            InvalidArgumentType,
        ),
        ({"token_id": "t", "signing_key": b"k" * 32}, UsageError),
        ({"token_id": "t", "token_secret": ""}, InvalidArgumentType),
    ],
)
def test_bad_credentials_are_refused(kwargs: dict, error: type[Exception]) -> None:
    """Malformed credentials are refused with a typed error."""
    with pytest.raises(error):
        Snws2Credentials(**kwargs)
