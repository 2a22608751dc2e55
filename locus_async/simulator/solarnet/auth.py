"""SNWS2 verification as SolarNetwork's server does it: signed headers sorted and complete,
Digest and Content-MD5, 15 minutes of skew, keys of the last 7 days; and the rate rule.

Owns: deciding whether a request is who it says. Must never: read the real clock.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import re
from datetime import datetime, timedelta
from typing import Final

from locus_async.simulator._http import SimRequest, SimResponse
from locus_async.simulator._snstate import (
    SnToken,
)
from locus_async.simulator.solarnet.state import (
    _AUTH,
    ALWAYS_SIGNED,
    KEY_DAYS,
    MAX_SKEW,
    CoreState,
    _auth_failure,
    _Fail,
)
from locus_async.solarnetwork._core.signing import (
    canonical_request,
    digest_header,
    signing_key,
    string_to_sign,
)

#: A header name as RFC 9110 defines it (a token), in lower case: ``_`` and ``.`` included.
_HEADER_NAME: Final = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")


class Snws2Auth(CoreState):
    """Signature verification and the rate rule."""

    def fault_key(self, request: SimRequest) -> str:
        digest = hashlib.blake2b(request.body, digest_size=6).hexdigest()
        return f"{request.method} {request.path}?{request.query}#{digest}"

    def caller(self, request: SimRequest) -> tuple[str, int | None] | None:
        match = _AUTH.match(request.header("authorization") or "")
        return None if match is None else (match["token"], None)

    def rate_limited(self, request: SimRequest) -> SimResponse:
        retry_at = int((self.clock() + 1.0) * 1000)
        return self._failure(
            _Fail(
                429,
                "Rate limit exceeded",
                code="WEB.10000",
                headers=(("x-sn-rate-limit-retry-after", str(retry_at)),),
            )
        )

    def throttle(self, request: SimRequest) -> SimResponse | None:
        """The token bucket of the request's credential (when a RateRule is set)."""
        rule = self.rate
        match = _AUTH.match(request.header("authorization") or "")
        if rule is None or match is None:
            return None
        now = self.clock()
        level, at = self._buckets.get(match["token"], (rule.burst, now))
        level = min(rule.burst, level + (now - at) * rule.per_second)
        if level < 1.0:
            self._buckets[match["token"]] = (level, now)
            ready = now + (1.0 - level) / rule.per_second
            self.stats.counters["rate_rule_429s"] += 1
            return self._failure(
                _Fail(
                    429,
                    "Rate limit exceeded",
                    code="WEB.10000",
                    headers=(("x-sn-rate-limit-retry-after", str(int(ready * 1000) + 1)),),
                )
            )
        self._buckets[match["token"]] = (level - 1.0, now)
        return None

    def extra_headers(self, request: SimRequest, status: int) -> tuple[tuple[str, str], ...]:
        """The server's ``Date`` on every answer and, on a successful one,
        ``X-SN-Rate-Limit-Remaining`` (whole requests left in the token's bucket)."""
        headers = [("date", email.utils.formatdate(self.clock(), usegmt=True))]
        match = _AUTH.match(request.header("authorization") or "")
        if status < 400 and self.rate is not None and match is not None:
            held = self._buckets.get(match["token"])
            if held is not None:
                headers.append(("x-sn-rate-limit-remaining", str(max(0, int(held[0])))))
        return tuple(headers)

    def error(self, status: int, message: str) -> SimResponse:
        return self._failure(_Fail(status, message))

    def revoke(self, request: SimRequest) -> SimResponse | None:
        return None

    def authenticate(
        self, request: SimRequest, params: list[tuple[str, str]], body_hash: str
    ) -> SnToken:
        """The token of a correctly signed request, or a _Fail saying what is wrong.
        ``params`` and ``body_hash``: the request's parameters (query and form fields) and
        body hash as the server reads them (``signed_inputs``)."""
        match, names, when = self._signed_headers(request)
        body = request.body
        digest = request.header("digest")
        if digest is not None and not hmac.compare_digest(digest.strip(), digest_header(body)):
            raise _auth_failure("Digest does not match the body", status=403)
        md5 = request.header("content-md5")
        if md5 is not None:
            raw = hashlib.md5(body, usedforsecurity=False).digest()
            if md5.strip() not in (raw.hex(), base64.b64encode(raw).decode()):
                raise _auth_failure("Content-MD5 does not match the body", status=403)
        token = self.world.tokens.get(match["token"])
        if token is None:
            raise _auth_failure("Bad credentials", status=403)
        headers = {n: request.header(n) or "" for n in names}
        canonical = canonical_request(
            request.method, request.raw_path or request.path, params, headers, body_hash
        )
        if not self._signature_matches(canonical, when, token.secret, match["sig"]):
            self.stats.counters["bad_signatures"] += 1
            raise _auth_failure("Invalid signature")
        if token.status != "Active":
            raise _auth_failure("Token disabled", status=403)
        if token.expires is not None and self.clock() >= token.expires:
            raise _auth_failure("Token expired")
        self.stats.counters["signatures_verified"] += 1
        return token

    def _signed_headers(self, request: SimRequest) -> tuple[re.Match[str], list[str], datetime]:
        """The parsed header, the signed names and the request date, all checked."""
        header = request.header("authorization")
        if not header:
            raise _auth_failure("Missing Authorization header")
        match = _AUTH.match(header)
        if match is None:
            raise _auth_failure("Malformed SNWS2 Authorization header")
        names = match["names"].split(";")  # as SolarNetwork's server: split on ";" only
        if not all(_HEADER_NAME.fullmatch(n) for n in names):
            raise _auth_failure("SignedHeaders must name headers (RFC 9110 tokens), lower-case")
        if names != sorted(set(names)):
            raise _auth_failure("SignedHeaders must be sorted, lower-case and unique")
        date_name = "x-sn-date" if request.header("x-sn-date") is not None else "date"
        for needed in ("host", date_name):
            if needed not in names:
                raise _auth_failure(f"The {needed} header must be signed")
        present = {n for n in request.headers if n in ALWAYS_SIGNED or n.startswith("x-sn-")}
        unsigned = sorted(present - set(names))
        if unsigned:
            raise _auth_failure(f"The {unsigned[0]} header must be signed")
        missing = [n for n in names if request.header(n) is None]
        if missing:
            raise _auth_failure(f"Signed header {missing[0]} is missing")
        raw_date = request.header(date_name) or ""
        try:
            when = email.utils.parsedate_to_datetime(raw_date)
        except (TypeError, ValueError):
            raise _auth_failure("Invalid request date") from None
        if not raw_date.endswith(" GMT") or when.tzinfo is None:
            raise _auth_failure("Invalid request date")
        if abs(when.timestamp() - self.clock()) > MAX_SKEW:
            raise _auth_failure("Date skew too large")
        return match, names, when

    @staticmethod
    def _signature_matches(canonical: str, when: datetime, secret: str, signature: str) -> bool:
        """Whether ``signature`` signs ``canonical`` with the key of one of the 7 days."""
        to_sign = string_to_sign(canonical, when).encode()
        for back in range(KEY_DAYS):
            key = signing_key(secret, (when - timedelta(days=back)).date())
            if hmac.compare_digest(hmac.new(key, to_sign, hashlib.sha256).hexdigest(), signature):
                return True
        return False
