"""Fixtures of the Cognito tests: moto's Cognito (cognito-idp) in server mode on loopback,
a user pool with its app client and users made by the tests, and the simulated Locus API
served on a socket, accepting only that pool's IdTokens."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from locus_async import CognitoPasswordGrant, LocusClient
from locus_async.simulator import CognitoTrust, ServedSimulator, Simulator
from tests.moto import moto_server

PASSWORD = "Sunny-Days-2026!"
REGION = "us-east-1"
PARTNER = 111


@attrs.frozen
class Pool:
    """A user pool on the emulator: where it answers and what it holds."""

    endpoint: str
    pool_id: str
    client_id: str
    idp: Any  # boto3's cognito-idp client, for making more users

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{REGION}.amazonaws.com/{self.pool_id}"

    @property
    def jwks_url(self) -> str:
        return f"{self.endpoint}/{self.pool_id}/.well-known/jwks.json"

    def trust(self, **kwargs: Any) -> CognitoTrust:
        """What the simulator trusts: this pool's keys (read from its JWKS URL), issuer
        and app client."""
        return CognitoTrust(
            issuer=self.issuer, client_id=self.client_id, jwks_url=self.jwks_url, **kwargs
        )

    def user(
        self,
        *,
        partner: int | None = PARTNER,
        status: str = "confirmed",
        name: str | None = None,
        password: str = PASSWORD,
    ) -> str:
        """A new user of the pool (``confirmed``, ``unconfirmed``, ``new_password``,
        ``sms_mfa``); its username."""
        name = name or f"user-{uuid.uuid4().hex[:10]}@example.com"
        attributes = (
            [] if partner is None else [{"Name": "custom:partnerId", "Value": str(partner)}]
        )
        if status == "unconfirmed":
            self.idp.sign_up(
                ClientId=self.client_id, Username=name, Password=password, UserAttributes=attributes
            )
            return name
        self.idp.admin_create_user(
            UserPoolId=self.pool_id,
            Username=name,
            UserAttributes=attributes,
            TemporaryPassword=password,
            MessageAction="SUPPRESS",
        )
        if status == "new_password":
            return name  # FORCE_CHANGE_PASSWORD: the sign-in answers NEW_PASSWORD_REQUIRED
        self.idp.admin_set_user_password(
            UserPoolId=self.pool_id, Username=name, Password=password, Permanent=True
        )
        if status == "sms_mfa":
            self.idp.admin_set_user_mfa_preference(
                UserPoolId=self.pool_id,
                Username=name,
                SMSMfaSettings={"Enabled": True, "PreferredMfa": True},
            )
        return name

    def grant(self, username: str, **kwargs: Any) -> CognitoPasswordGrant:
        """The provider a user of this pool signs in with."""
        return CognitoPasswordGrant(
            endpoint=self.endpoint,
            client_id=self.client_id,
            username=username,
            password=kwargs.pop("password", PASSWORD),
            **kwargs,
        )


@pytest.fixture(scope="session")
def cognito_endpoint() -> Iterator[str]:
    """moto's server on 127.0.0.1 (a free port): its endpoint URL."""
    with moto_server() as url:
        yield url


def make_pool(endpoint: str, **policy: Any) -> Pool:
    """A new user pool on the emulator at ``endpoint`` with a ``partnerId`` custom
    attribute and a public app client allowing USER_PASSWORD_AUTH and REFRESH_TOKEN_AUTH;
    ``policy``: its PasswordPolicy (moto's default asks for every kind of character)."""
    import boto3

    idp = boto3.client(
        "cognito-idp",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing-key-id",
        aws_secret_access_key="testing-secret-key",
    )
    pool_id = idp.create_user_pool(
        PoolName=f"locus-{uuid.uuid4().hex[:8]}",
        Schema=[{"Name": "partnerId", "AttributeDataType": "String", "Mutable": True}],
        **({"Policies": {"PasswordPolicy": policy}} if policy else {}),
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="locus-async-tests",
        GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    return Pool(endpoint=endpoint, pool_id=pool_id, client_id=client_id, idp=idp)


@pytest.fixture(scope="session")
def pool(cognito_endpoint: str) -> Pool:
    """A user pool of this session (see ``make_pool``)."""
    return make_pool(cognito_endpoint)


@pytest.fixture
def strict_sim(pool: Pool) -> Simulator:
    """A simulator that accepts only this pool's IdTokens (its own OAuth tokens aside)."""
    return Simulator(cognito=pool.trust())


@pytest.fixture
def served(strict_sim: Simulator) -> Iterator[ServedSimulator]:
    """The strict simulator on a loopback socket."""
    with strict_sim.serve() as server:
        yield server


@pytest.fixture
def user(pool: Pool) -> str:
    """A confirmed user of partner 111."""
    return pool.user()


def cognito_client(
    served: ServedSimulator, grant: CognitoPasswordGrant, **kwargs: Any
) -> LocusClient:
    """A client of the served simulator signing in with ``grant``."""
    return LocusClient(base_url=served.url, auth=grant, **kwargs)
