"""The simulated Locus token endpoint: three grants, expiry, rotation and revocation, and who a
request counts against.

Owns: issuing and checking tokens. Must never: read the real clock.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any
from urllib.parse import parse_qsl

from locus_async.locus._core.cognito import partner_of
from locus_async.simulator._http import SimRequest, SimResponse
from locus_async.simulator.locus.state import (
    RATE_LIMITED,
    Account,
    CoreState,
    _AccessToken,
    _json,
    error_response,
)


class TokenAuth(CoreState):
    """Accounts and tokens of the simulated server."""

    def allowance_of(self, account: Account) -> int:
        return account.allowance if account.allowance is not None else self.allowance

    def fault_key(self, request: SimRequest) -> str:
        key = f"{request.method} {request.path}?{request.query}"
        if request.path == "/oauth/token":
            key += "#" + hashlib.blake2b(request.body, digest_size=6).hexdigest()
        return key

    def caller(self, request: SimRequest) -> tuple[str, int | None] | None:
        account = self.account_for(request)
        return None if account is None else (account.client_id, self.allowance_of(account))

    def rate_limited(self, request: SimRequest) -> SimResponse:
        return RATE_LIMITED

    def throttle(self, request: SimRequest) -> SimResponse | None:
        return None

    def extra_headers(self, request: SimRequest, status: int) -> tuple[tuple[str, str], ...]:
        return ()

    def error(self, status: int, message: str) -> SimResponse:
        return error_response(status, message)

    def revoke(self, request: SimRequest) -> SimResponse | None:
        """Revoke the request's access token (a fault): it is answered 401 now and after."""
        if request.path == "/oauth/token":
            return None
        record = self._bearer(request)
        if record is None or record.revoked:
            return None
        record.revoked = True
        return error_response(401, "Token revoked")

    def account_for(self, request: SimRequest) -> Account | None:
        """The account a request counts against (None: it will be rejected anyway)."""
        if request.path == "/oauth/token":
            form = dict(parse_qsl(request.body.decode("latin-1"), keep_blank_values=True))
            return self.accounts.get(form.get("client_id", ""))
        record = self._bearer(request)
        return record.account if record is not None and not record.revoked else None

    def _bearer(self, request: SimRequest) -> _AccessToken | None:
        header = request.header("authorization") or ""
        if not header.startswith("Bearer "):
            return None
        token = header[len("Bearer ") :]
        record = self._tokens.get(token)
        if record is None and self.cognito is not None and token.count(".") == 2:
            record = self._cognito_record(token)
        return record

    def refusal(self, request: SimRequest) -> str:
        """Why a request without a usable token is refused (401)."""
        header = request.header("authorization") or ""
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
        if self.cognito is not None and token.count(".") == 2:
            return self.cognito.verify(token).reason
        return "Authentication failed"

    def _cognito_record(self, token: str) -> _AccessToken | None:
        """A verified Cognito IdToken as an access token of its user's account (kept, so
        it is checked once and can be revoked like ours)."""
        assert self.cognito is not None
        claims = self.cognito.verify(token).claims
        if claims is None:
            return None
        sub = str(claims.get("sub", ""))
        account = self._cognito_accounts.get(sub)
        if account is None:
            account = self._cognito_accounts[sub] = Account(
                client_id=f"cognito:{sub}",
                client_secret="",
                username=str(claims.get("cognito:username") or claims.get("email") or sub),
                partner_ids=(partner_of(claims) or 0,),
                allowance=self.cognito.allowance,
            )
        record = self._tokens[token] = _AccessToken(account, float(claims["exp"]))
        self.stats.grants["cognito"] += 1
        return record

    def _new_secret(self, kind: str) -> str:
        self._token_counter += 1
        raw = f"{self.seed}:{kind}:{self._token_counter}:{random.random()}".encode()
        return hashlib.blake2b(raw, digest_size=16).hexdigest()

    def revoke_token(self, access_token: str) -> None:
        record = self._tokens.get(access_token)
        if record is not None:
            record.revoked = True

    def revoke_all(self, *, refresh_tokens: bool = False) -> None:
        """Revoke every access token (and refresh token, if asked)."""
        for record in self._tokens.values():
            record.revoked = True
        if refresh_tokens:
            self._refresh.clear()

    def _issue(self, account: Account, *, with_refresh: bool) -> dict[str, Any]:
        now = self.clock()
        access = self._new_secret("access")
        self._tokens[access] = _AccessToken(account, now + self.token_lifetime)
        self.issued_tokens.append(access)
        body: dict[str, Any] = {
            "access_token": access,
            "issued_at": int(now),
            "expires_in": max(1, int(self.token_lifetime)),
            "token_type": "bearer",
        }
        if with_refresh:
            refresh = self._new_secret("refresh")
            self._refresh[refresh] = account
            self.issued_tokens.append(refresh)
            body["refresh_token"] = refresh
        return body

    def _token(self, request: SimRequest) -> SimResponse:
        if request.method != "POST":
            return error_response(405, "Method not allowed")
        if not (request.header("content-type") or "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return error_response(400, "Content-Type must be application/x-www-form-urlencoded")
        form = dict(parse_qsl(request.body.decode("latin-1"), keep_blank_values=True))
        grant = form.get("grant_type", "")
        account = self.accounts.get(form.get("client_id", ""))
        if account is None or account.client_secret != form.get("client_secret"):
            return error_response(401, "Bad client credentials")
        if grant == "password":
            if account.grant != "password":
                return error_response(401, "Credentials are not valid for this flow")
            if form.get("username") != account.username or form.get("password") != account.password:
                return error_response(401, "Bad credentials")
            self.stats.grants["password"] += 1
            return _json(200, self._issue(account, with_refresh=True))
        if grant == "refresh_token":
            holder = self._refresh.get(form.get("refresh_token", ""))
            if holder is None or holder.client_id != account.client_id:
                return error_response(401, "Invalid refresh token")
            self.stats.grants["refresh_token"] += 1
            body = self._issue(account, with_refresh=self.rotate_refresh_tokens)
            if self.rotate_refresh_tokens:
                del self._refresh[form["refresh_token"]]
            return _json(200, body)
        if grant == "client_credentials":
            if account.grant != "client_credentials":
                return error_response(401, "Credentials are not valid for this flow")
            self.stats.grants["client_credentials"] += 1
            return _json(200, self._issue(account, with_refresh=False))
        return error_response(400, f"Unsupported grant_type {grant!r}")
