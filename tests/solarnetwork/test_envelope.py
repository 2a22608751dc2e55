"""The envelope, both list shapes, and errors mapped onto the shared tree."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from locus_async._core.converter import make_converter
from locus_async._core.http import Request, Response
from locus_async.errors import (
    AuthenticationError,
    BadRequest,
    ClockSkewError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ResponseDecodeError,
    ServerError,
    ValidationFailed,
)
from locus_async.solarnetwork import Instruction, Metadata, NodeAssociation, SolarNode
from locus_async.solarnetwork._core.envelope import (
    bool_decoder,
    decipher_solarnetwork,
    first_decoder,
    list_decoder,
    object_decoder,
    page_decoder,
    success_decoder,
)

REQUEST = Request("GET", "/solaruser/api/v1/sec/nodes")
CONVERTER = make_converter(strict=True)


def _response(status: int, body: Any, **headers: str) -> Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(status, {k.replace("_", "-"): v for k, v in headers.items()}, content, REQUEST)


def test_success_passes() -> None:
    """A 2xx envelope (or a binary body) is not an error."""
    decipher_solarnetwork(_response(200, {"success": True}), 0.0)
    decipher_solarnetwork(_response(200, b"\x30\x82binary"), 0.0)


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "code"),
    [
        (401, {"success": False, "message": "Invalid signature"}, {}, AuthenticationError, None),
        (
            403,
            {"success": False, "message": "Bad credentials"},
            {"x_sn_errormessage": "Bad credentials"},
            AuthenticationError,
            None,
        ),
        (401, {"success": False, "message": "Date skew too large"}, {}, ClockSkewError, None),
        (
            403,
            {"success": False, "message": "ACCESS_DENIED", "code": "SEC.00001"},
            {},
            PermissionDenied,
            "SEC.00001",
        ),
        (
            404,
            {"success": False, "message": "nope", "code": "DAO.00102"},
            {},
            NotFound,
            "DAO.00102",
        ),
        (
            422,
            {
                "success": False,
                "message": "bad",
                "code": "VAL.00003",
                "errors": [{"field": "nodeId", "message": "nodeId is required"}],
            },
            {},
            ValidationFailed,
            "VAL.00003",
        ),
        (
            200,
            {"success": False, "code": "VAL.00001", "message": "unreadable"},
            {},
            ValidationFailed,
            "VAL.00001",
        ),
        (
            200,
            {"success": False, "code": "DAO.00102", "message": "missing"},
            {},
            NotFound,
            "DAO.00102",
        ),
        (200, {"success": False, "message": "nope"}, {}, BadRequest, None),
        (
            429,
            {"success": False, "code": "DAO.00201", "message": "busy"},
            {},
            RateLimited,
            "DAO.00201",
        ),
        (500, {"success": False, "message": "Internal error"}, {}, ServerError, None),
        (502, b"<html>bad gateway</html>", {}, ServerError, None),
    ],
)
def test_error_mapping(
    status: int, body: Any, headers: dict[str, str], error: type[Exception], code: str | None
) -> None:
    """Error statuses fail in ``decipher``; ``success: false`` on a 2xx fails when the
    decoder reads the envelope (the body is parsed once)."""
    response = _response(status, body, **headers)

    def read() -> None:
        decipher_solarnetwork(response, 0.0)
        success_decoder(response)

    with pytest.raises(error) as caught:
        read()
    assert getattr(caught.value, "code", None) == code
    assert type(caught.value) is error


def test_a_2xx_body_is_left_to_the_decoder() -> None:
    """success:false inside a 200 is raised by the decoder, mapped like an error status."""
    failed = _response(200, {"success": False, "code": "DAO.00102", "message": "gone"})
    decipher_solarnetwork(failed, 0.0)  # nothing parsed here
    with pytest.raises(NotFound, match="gone"):
        list_decoder(CONVERTER, Instruction)(failed)


def test_validation_errors_are_listed() -> None:
    """Validation errors are listed field by field in the message, plain ones too."""
    body = {
        "success": False,
        "message": "Validation error",
        "code": "VAL.00003",
        "errors": [{"field": "nodeId", "message": "nodeId is required"}, "plain"],
    }
    with pytest.raises(ValidationFailed, match="nodeId is required; plain"):
        decipher_solarnetwork(_response(422, body), 0.0)


def test_rate_limit_retry_after_is_epoch_milliseconds() -> None:
    """X-SN-Rate-Limit-Retry-After is an epoch-millisecond instant, turned into seconds."""
    response = _response(
        429, {"success": False, "code": "WEB.10000"}, x_sn_rate_limit_retry_after="1700000002500"
    )
    with pytest.raises(RateLimited) as caught:
        decipher_solarnetwork(response, 1_700_000_000.0)
    assert caught.value.retry_after == pytest.approx(2.5)
    past = _response(429, {}, x_sn_rate_limit_retry_after="1600000000000")
    with pytest.raises(RateLimited) as caught:
        decipher_solarnetwork(past, 1_700_000_000.0)
    assert caught.value.retry_after == 0.0


def test_secrets_are_redacted_from_messages() -> None:
    """A secret quoted in a server message is redacted from the error."""
    body = {"success": False, "message": "token secret-value-123 refused"}
    with pytest.raises(AuthenticationError) as caught:
        decipher_solarnetwork(_response(401, body), 0.0, ["secret-value-123"])
    assert "secret-value-123" not in str(caught.value)


NODE = {"id": 1, "created": "2015-02-26 21:00:00.000Z"}


def test_page_decoder() -> None:
    """A paged envelope decodes to offset, counts, total and typed results."""
    decode = page_decoder(CONVERTER, SolarNode)
    page = decode(
        _response(
            200,
            {
                "success": True,
                "data": {
                    "totalResults": 3,
                    "startingOffset": 2,
                    "returnedResultCount": 1,
                    "results": [NODE],
                },
            },
        )
    )
    assert (page.total_results, page.starting_offset, len(page.results)) == (3, 2, 1)
    with pytest.raises(ResponseDecodeError, match="lose or repeat"):
        decode(
            _response(
                200,
                {
                    "success": True,
                    "data": {"startingOffset": 0, "returnedResultCount": 2, "results": [NODE]},
                },
            )
        )
    with pytest.raises(ResponseDecodeError, match=r"\$\.data\.results\[0\]\.id"):
        decode(
            _response(
                200,
                {
                    "success": True,
                    "data": {
                        "startingOffset": 0,
                        "returnedResultCount": 1,
                        "results": [{"id": "1"}],
                    },
                },
            )
        )


INSTRUCTION = {
    "id": 7,
    "topic": "Signal",
    "state": "Queued",
    "nodeId": 1,
    "created": "2015-02-26 21:00:00.000Z",
}


def test_list_decoder_shapes() -> None:
    """Lists decode from no data, one object, a list or a page alike."""
    decode = list_decoder(CONVERTER, Instruction)
    assert decode(_response(200, {"success": True})) == []
    assert [i.id for i in decode(_response(200, {"success": True, "data": [INSTRUCTION]}))] == [7]
    assert [i.id for i in decode(_response(200, {"success": True, "data": INSTRUCTION}))] == [7]
    many = decode(
        _response(
            200,
            {
                "success": True,
                "totalResultCount": 2,
                "data": [INSTRUCTION, {**INSTRUCTION, "id": 8}],
            },
        )
    )
    assert [i.id for i in many] == [7, 8]


def test_first_decoder_shapes() -> None:
    """A single document decodes from an object, a list of one or a page of one."""
    decode = first_decoder(CONVERTER, Metadata)
    doc = {"nodeId": 1, "m": {"a": 1}}
    paged = {"startingOffset": 0, "returnedResultCount": 1, "totalResults": 1, "results": [doc]}
    for data in (doc, [doc], paged):
        meta = decode(_response(200, {"success": True, "data": data}))
        assert meta is not None
        assert meta.m == {"a": 1}
    for empty in (
        {"success": True},
        {"success": True, "data": []},
        {"success": True, "data": {"results": []}},
        {"success": True, "data": {}},
    ):
        assert decode(_response(200, empty)) is None


def test_object_bool_success_and_bare() -> None:
    """Object, boolean, success-only and bare bodies decode, and wrong shapes are refused."""
    with pytest.raises(ResponseDecodeError, match="no data"):
        object_decoder(CONVERTER, Instruction)(_response(200, {"success": True}))
    assert bool_decoder(_response(200, {"success": True, "data": False})) is False
    with pytest.raises(ResponseDecodeError):
        bool_decoder(_response(200, {"success": True, "data": "yes"}))
    assert success_decoder(_response(200, {"success": True})) is None
    with pytest.raises(ResponseDecodeError, match="envelope"):
        success_decoder(_response(200, {"id": 1}))
    bare = object_decoder(CONVERTER, NodeAssociation, bare=True)
    association = bare(_response(200, {"networkId": 5, "confirmationKey": "k-123"}))
    assert association.network_id == 5
    assert "k-123" not in repr(association)
    wrapped = bare(_response(200, {"success": True, "data": {"networkId": 6}}))
    assert wrapped.network_id == 6


def test_a_cut_sensitive_body_is_never_quoted() -> None:
    """A generated token's answer holds its secret: a garbled one is reported unquoted."""
    body = b'{"success":true,"data":{"authSecret":"s3cr3t-value-123","id":"x"'
    sensitive = Request(
        "POST", "/solaruser/api/v1/sec/user/auth-tokens/generate/User", sensitive=True
    )
    with pytest.raises(ResponseDecodeError) as caught:
        success_decoder(Response(200, {}, body, sensitive))
    assert "s3cr3t-value-123" not in str(caught.value)
    with pytest.raises(ResponseDecodeError) as plain:
        success_decoder(Response(200, {}, body, REQUEST))
    assert "starts" in str(plain.value)
