"""Security tokens: list, generate, info, status, delete, policies."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, Literal

import orjson

from locus_async.errors import (
    InvalidArgumentType,
    UsageError,
)
from locus_async.solarnetwork._core.endpoints import (
    TOKEN_INFO,
    TOKEN_POLICY,
    TOKEN_STATUS,
    TOKEN_STATUSES,
    TOKEN_TYPES,
    TOKENS,
    token_generate,
)
from locus_async.solarnetwork._core.envelope import (
    list_decoder,
    object_decoder,
    success_decoder,
)
from locus_async.solarnetwork.models import (
    SecurityToken,
)
from locus_async.solarnetwork.resources._base import Resource

__all__ = ["TokensAPI"]


class TokensAPI(Resource):
    """``/user/auth-tokens``: list, generate, info, status, delete, policy add and store."""

    async def list(self) -> builtins.list[SecurityToken]:
        return await self._requester.call(
            "GET", TOKENS, list_decoder(self._converter, SecurityToken)
        )

    async def generate(
        self,
        type: Literal["ReadNodeData", "User"],
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> SecurityToken:
        """A new token; its ``auth_secret`` is returned this once (never printed)."""
        if type not in TOKEN_TYPES:
            raise UsageError(f"type must be one of {', '.join(TOKEN_TYPES)}, got {type!r}")
        form = [(k, v) for k, v in (("name", name), ("description", description)) if v is not None]
        return await self._requester.call(
            "POST",
            token_generate(type),
            object_decoder(self._converter, SecurityToken),
            form=form,
            sensitive=True,
        )

    @staticmethod
    def _token(token_id: object) -> str:
        if not isinstance(token_id, str) or not token_id.strip():
            raise UsageError("token_id must be a non-empty string")
        return token_id

    async def update_info(
        self, token_id: str, *, name: str | None = None, description: str | None = None
    ) -> None:
        form = [("tokenId", self._token(token_id))]
        form += [(k, v) for k, v in (("name", name), ("description", description)) if v is not None]
        await self._requester.call("POST", TOKEN_INFO, success_decoder, form=form, retry_safe=True)

    async def set_status(self, token_id: str, status: Literal["Active", "Disabled"]) -> None:
        if status not in TOKEN_STATUSES:
            raise UsageError(f"status must be Active or Disabled, got {status!r}")
        await self._requester.call(
            "POST",
            TOKEN_STATUS,
            success_decoder,
            form=[("tokenId", self._token(token_id)), ("status", status)],
            retry_safe=True,
        )

    async def delete(self, token_id: str) -> None:
        await self._requester.call(
            "DELETE",
            TOKENS,
            success_decoder,
            params=[("tokenId", self._token(token_id))],
        )

    @staticmethod
    def _policy(policy: Mapping[str, Any]) -> bytes:
        if not isinstance(policy, Mapping) or not policy:
            raise UsageError("policy must be a non-empty dict such as {'nodeIds': [1, 2]}")
        try:
            return orjson.dumps(dict(policy))
        except TypeError as exc:
            raise InvalidArgumentType(f"policy is not JSON-serialisable: {exc}") from None

    async def add_policy(self, token_id: str, policy: Mapping[str, Any]) -> SecurityToken:
        """Merge ``policy`` into the token's (lists are unioned); returns the token."""
        return await self._requester.call(
            "PATCH",
            TOKEN_POLICY,
            object_decoder(self._converter, SecurityToken),
            params=[("tokenId", self._token(token_id))],
            json=self._policy(policy),
            retry_safe=True,
        )

    async def store_policy(self, token_id: str, policy: Mapping[str, Any]) -> SecurityToken:
        """Replace the token's policy with ``policy``; returns the token."""
        return await self._requester.call(
            "PUT",
            TOKEN_POLICY,
            object_decoder(self._converter, SecurityToken),
            params=[("tokenId", self._token(token_id))],
            json=self._policy(policy),
        )
