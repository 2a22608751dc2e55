"""SNWS2 request signing (SolarNetwork's HMAC-SHA256 scheme, adapted from AWS S3 V4).

Owns: the canonical request, the signing key (derived per UTC day, valid 7 days), the string
to sign, the signature, the ``Authorization`` value, the ``Digest`` header and the RFC 1123
date. Must never: do I/O, read a clock (dates are arguments), or log anything.

The rules, as SolarNetwork's own server and clients implement them:

* Signed header names are lower-cased, de-duplicated and sorted; values trimmed.
* The path is the raw path exactly as sent (still percent-encoded), without the query.
* The canonical query holds the decoded parameters sorted by name (stably: repeated names
  keep their order; names compare by UTF-16 code units, as Java sorts them), each name
  and value percent-encoded keeping only ``A-Z a-z 0-9 - _ . ~`` (UTF-8, upper-case hex,
  space as ``%20``, never ``+``), joined with ``&``.
* A form post (``application/x-www-form-urlencoded``) puts its fields into the canonical
  query and signs the hash of an empty body; any other body is hashed as sent, and should
  travel with a signed ``Digest: sha-256=<base64>`` header.
* Key: ``HMAC("SNWS2" + secret, "YYYYMMDD")`` then ``HMAC(that, "snws2_request")``.
* String to sign: ``SNWS2-HMAC-SHA256\\n<yyyyMMddTHHmmssZ>\\n<hex SHA-256 of the canonical
  request>``; signature: lower-case hex ``HMAC(key, string to sign)``.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Final
from urllib.parse import parse_qsl, quote

__all__ = [
    "ALGORITHM",
    "EMPTY_BODY_SHA256",
    "authorization_value",
    "canonical_query",
    "canonical_request",
    "digest_header",
    "http_date",
    "is_form",
    "signing_key",
    "snws2_authorization",
    "string_to_sign",
]

ALGORITHM: Final = "SNWS2-HMAC-SHA256"
EMPTY_BODY_SHA256: Final = hashlib.sha256(b"").hexdigest()
FORM: Final = "application/x-www-form-urlencoded"


def _uri_encode(value: str) -> str:
    return quote(value, safe="-_.~")


def _java_order(pair: tuple[str, str]) -> bytes:
    """Names compare as Java strings do (UTF-16 code units), as the server sorts them."""
    return pair[0].encode("utf-16-be", "surrogatepass")


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """Decoded ``(name, value)`` pairs, sorted by name (stably), re-encoded, joined."""
    return "&".join(
        f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(params, key=_java_order)
    )


def _signed(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    merged: dict[str, str] = {}
    for name, value in headers.items():
        merged[name.strip().lower()] = value.strip()
    return sorted(merged.items())


def canonical_request(
    method: str,
    path: str,
    params: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body_sha256: str,
) -> str:
    """The canonical request: method, raw path, query, signed headers, their names, hash."""
    signed = _signed(headers)
    lines = [method.upper(), path, canonical_query(params)]
    lines += [f"{name}:{value}" for name, value in signed]
    lines += [";".join(name for name, _ in signed), body_sha256]
    return "\n".join(lines)


def signing_key(secret: str, day: date) -> bytes:
    """The key for ``day`` (valid for requests dated that day and the 6 after)."""
    first = hmac.new(f"SNWS2{secret}".encode(), day.strftime("%Y%m%d").encode(), hashlib.sha256)
    return hmac.new(first.digest(), b"snws2_request", hashlib.sha256).digest()


def string_to_sign(canonical: str, when: datetime) -> str:
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{ALGORITHM}\n{stamp}\n{hashlib.sha256(canonical.encode()).hexdigest()}"


def authorization_value(token_id: str, signed_names: Iterable[str], signature: str) -> str:
    return (
        f"SNWS2 Credential={token_id},SignedHeaders={';'.join(signed_names)},Signature={signature}"
    )


def http_date(when: datetime) -> str:
    """RFC 1123 with a two-digit day and GMT, independent of the locale."""
    return email.utils.format_datetime(when.astimezone(UTC).replace(microsecond=0), usegmt=True)


def digest_header(body: bytes) -> str:
    return "sha-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def is_form(headers: Mapping[str, str]) -> bool:
    for name, value in headers.items():
        if name.lower() == "content-type":
            return value.split(";")[0].strip().lower() == FORM
    return False


def signed_inputs(
    query: Iterable[tuple[str, str]], headers: Mapping[str, str], body: bytes
) -> tuple[list[tuple[str, str]], str]:
    """(canonical parameters, body hash): form fields join the query and hash as empty."""
    params = list(query)
    if is_form(headers):
        params += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return params, EMPTY_BODY_SHA256
    return params, hashlib.sha256(body).hexdigest()


def snws2_authorization(
    *,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    token_id: str,
    token_secret: str | None = None,
    key: bytes | None = None,
    date: datetime,
) -> str:
    """The ``Authorization`` value for a request, signing exactly the ``headers`` given.

    Give ``token_secret`` (the key is derived for ``date``'s day) or a ``key`` derived
    earlier with ``signing_key`` (valid 7 days; the secret then need not be kept).
    """
    if key is None:
        if token_secret is None:
            raise ValueError("give token_secret or a signing key")
        key = signing_key(token_secret, date.astimezone(UTC).date())
    params, body_hash = signed_inputs(query, headers, body)
    canonical = canonical_request(method, path, params, headers, body_hash)
    signature = hmac.new(key, string_to_sign(canonical, date).encode(), hashlib.sha256).hexdigest()
    return authorization_value(token_id, [name for name, _ in _signed(headers)], signature)
