"""The pure Cognito decisions: endpoints, the claims of a JWT, the partner claim, and
every error pickling whole (a Dask task's error reaches the coordinator as it was)."""

from __future__ import annotations

import base64
import inspect
import pickle

import orjson
import pytest

from locus_async import errors
from locus_async.errors import ChallengeRequired, RateLimited, UsageError, WrongCredentials
from locus_async.locus._core.cognito import claims_of, cognito_endpoint, partner_of


def test_endpoint_from_region_or_given() -> None:
    """A region names Cognito's public endpoint; an endpoint is checked like a base URL;
    exactly one of them."""
    assert cognito_endpoint(region="ap-southeast-2", endpoint=None) == (
        "https://cognito-idp.ap-southeast-2.amazonaws.com"
    )
    assert cognito_endpoint(region=None, endpoint="http://127.0.0.1:5000/") == (
        "http://127.0.0.1:5000"
    )
    with pytest.raises(UsageError, match="not both"):
        cognito_endpoint(region="us-east-1", endpoint="https://x.example")
    with pytest.raises(UsageError, match="not both"):
        cognito_endpoint(region=None, endpoint=None)
    with pytest.raises(UsageError, match="is not an AWS region"):
        cognito_endpoint(region="US-EAST-1", endpoint=None)


def test_claims_and_partner() -> None:
    """Claims come from the JWT's middle part (padding restored); anything else is no
    claims; the partner is a positive number, given as a string or a number."""
    payload = base64.urlsafe_b64encode(orjson.dumps({"custom:partnerId": "4242"})).rstrip(b"=")
    token = f"e30.{payload.decode()}.sig"
    assert claims_of(token) == {"custom:partnerId": "4242"}
    assert partner_of(claims_of(token)) == 4242
    assert claims_of("opaque-token") == {}
    assert claims_of("a.%%%.c") == {}
    assert claims_of("a.WzFd.c") == {}  # a JSON array, not claims
    assert [partner_of({"custom:partnerId": v}) for v in (7, " 8 ", "0", -1, True, "x")] == [
        7, 8, None, None, None, None,
    ]  # fmt: skip


def _round_trip(error: errors.LocusError) -> errors.LocusError:
    return pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes


def test_every_error_pickles_with_its_attributes() -> None:
    """Each public error class survives pickling: type, message and attributes."""
    challenge = _round_trip(ChallengeRequired("asks", challenge="SMS_MFA"))
    assert (type(challenge), challenge.challenge, str(challenge)) == (
        ChallengeRequired, "SMS_MFA", "asks"
    )  # fmt: skip
    limited = _round_trip(RateLimited("slow down", retry_after=2.5, request="GET /"))
    assert (limited.retry_after, limited.request, str(limited)) == (
        2.5, "GET /", "HTTP 429: slow down (GET /)"
    )  # fmt: skip
    wrong = WrongCredentials("wrong", status_code=400, code="NotAuthorizedException")
    again = _round_trip(wrong)
    assert (again.status_code, again.code, again.message) == (
        400,
        "NotAuthorizedException",
        "wrong",
    )
    classes = [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, errors.LocusError)
    ]
    assert len(classes) >= 25
    for cls in classes:
        assert cls.__reduce__ is errors.LocusError.__reduce__
