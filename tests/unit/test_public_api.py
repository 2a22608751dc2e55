"""The public API: everything public is re-exported from locus_async, and only that."""

from __future__ import annotations

import importlib
import inspect

import pytest

import locus_async

# Modules whose ``__all__`` is public API and must be re-exported from the package root.
PUBLIC_MODULES = [
    "locus_async.errors",
    "locus_async.locus.models",
    "locus_async.locus.timeseries",
    "locus_async.locus.backfill",
]
# Public names of private shell modules that users need.
SHELL_NAMES = {
    "locus_async._shell.limiter": {"AdaptiveLimiter", "Limiter", "LocalLimiter", "Priority"},
    "locus_async._shell.redis": {"RedisLimiter", "RedisTokenStore"},
    "locus_async.locus.auth": set(importlib.import_module("locus_async.locus.auth").__all__),
    "locus_async._shell.retry": {"RetryPolicy", "set_testing", "testing"},
    "locus_async._shell.transport": {"Timeouts"},
    "locus_async._shell.stats": {"ClientStats"},
}

#: The root's names, decided one by one (what a user imports; the rest lives in its
#: submodule: ``locus_async.sync``, ``locus_async.solarnetwork``, ``locus_async.simulator``).
ROOT_NAMES = [
    "DEFAULT_BASE_URL",
    "DEFAULT_LIMITS",
    "APIError",
    "AdaptiveLimiter",
    "Aggregation",
    "Alert",
    "AuthenticationError",
    "Backfill",
    "BackfillPlan",
    "BackfillProgress",
    "BackfillResult",
    "BackfillSpec",
    "BadRequest",
    "BaseField",
    "BearerToken",
    "CertificateError",
    "ChallengeRequired",
    "CheckpointError",
    "Client",
    "ClientClosed",
    "ClientCredentialsGrant",
    "ClientStats",
    "ClockSkewError",
    "CognitoPasswordGrant",
    "CompactionResult",
    "Component",
    "EventLoopChanged",
    "FieldParameter",
    "Granularity",
    "HttpxAuth",
    "InstallInfo",
    "InstructionTimeout",
    "InvalidArgumentType",
    "Limiter",
    "LocalLimiter",
    "LocusClient",
    "LocusError",
    "ModelSettings",
    "NotFound",
    "OutputLocked",
    "PasswordGrant",
    "PasswordResetRequired",
    "PermissionDenied",
    "Priority",
    "RateLimited",
    "RedisLimiter",
    "RedisTokenStore",
    "RefreshTokenGrant",
    "RequestTimeout",
    "ResponseDecodeError",
    "RetryPolicy",
    "ServerError",
    "SignInError",
    "Site",
    "Slot",
    "Snws2Credentials",
    "SolarNetClient",
    "TimeSeries",
    "Timeouts",
    "Token",
    "TokenProvider",
    "TokenStore",
    "TooManyAttempts",
    "TransportError",
    "UnknownUser",
    "UsageError",
    "UserNotConfirmed",
    "ValidationFailed",
    "Window",
    "WindowFailure",
    "WindowStream",
    "WrongCredentials",
    "__version__",
    "compact_dataset",
    "from_jsonable",
    "set_testing",
    "snws2_authorization",
    "testing",
    "to_jsonable",
]


def test_the_root_exports_exactly_the_decided_names() -> None:
    """``__all__`` equals the decided list, order included: adding or dropping a root
    name is a change to this list, made on purpose."""
    assert locus_async.__all__ == ROOT_NAMES
    cluster = importlib.import_module("locus_async.distributed")
    assert cluster.__all__ == ["Credential", "DaskFetcher", "FleetDataset", "load_fleet"]
    sync = importlib.import_module("locus_async.sync")
    assert sync.__all__ == ["LocusClient", "SolarNetClient", "SyncIterator"]
    assert {getattr(sync, n).__module__ for n in sync.__all__} == {"locus_async.sync"}


def test_all_names_exist() -> None:
    """Every name in __all__ is importable from the package."""
    for name in locus_async.__all__:
        assert hasattr(locus_async, name), name
    assert len(locus_async.__all__) == len(set(locus_async.__all__))


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_modules_are_re_exported(module_name: str) -> None:
    """Whatever a public module exports, the package exports too."""
    module = importlib.import_module(module_name)
    missing = set(module.__all__) - set(locus_async.__all__)
    assert not missing, f"{module_name} exports {sorted(missing)} but locus_async does not"


@pytest.mark.parametrize(("module_name", "names"), SHELL_NAMES.items())
def test_shell_names_are_re_exported(module_name: str, names: set[str]) -> None:
    """Public faces of private shell modules are reachable from the package root."""
    module = importlib.import_module(module_name)
    for name in names:
        assert getattr(locus_async, name) is getattr(module, name)


def test_every_error_class_is_exported() -> None:
    """No exception class of the tree is left out of __all__ (an old alias, such as
    ``errors.TimeoutError``, counts as its class)."""
    from locus_async import errors

    classes = {
        value
        for value in vars(errors).values()
        if inspect.isclass(value)
        and issubclass(value, Exception)
        and value.__module__ == errors.__name__
    }
    exported = [getattr(locus_async, name) for name in locus_async.__all__]
    assert all(any(c is e for e in exported) for c in classes)
    assert {c.__name__ for c in classes} <= set(locus_async.__all__)


def test_client_is_exported() -> None:
    """The client class and its default URL are public."""
    assert {"LocusClient", "DEFAULT_BASE_URL"} <= set(locus_async.__all__)


def test_all_is_exact_and_sorted() -> None:
    """__all__ lists every public name the package root binds (submodules aside), no
    other (ruff's RUF022 keeps every ``__all__`` sorted): a name added to the root
    without a decision fails here."""
    public = {
        name
        for name, value in vars(locus_async).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    } | {"__version__"}
    assert public == set(locus_async.__all__)


def test_usage_errors_are_value_errors() -> None:
    """Misuse is catchable as ValueError (and wrong types as TypeError)."""
    assert issubclass(locus_async.UsageError, ValueError)
    assert issubclass(locus_async.InvalidArgumentType, TypeError)
    assert issubclass(locus_async.UsageError, locus_async.LocusError)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_the_import_paths_users_know_still_work(module_name: str) -> None:
    """``locus_async.client`` and friends re-export the code that moved to ``locus/``: the
    same objects, and every name of their ``__all__``."""
    module = importlib.import_module(module_name)
    for name in module.__all__:
        assert getattr(module, name) is getattr(locus_async, name)
    assert importlib.import_module("locus_async.client").LocusClient is locus_async.LocusClient
    assert importlib.import_module("locus_async.cli").main.__module__ == "locus_async.cli.app"


def test_no_root_name_shadows_a_builtin() -> None:
    """``from locus_async import *`` leaves every builtin as it was: ``except
    TimeoutError`` still catches asyncio's timeouts (and ours, a subclass)."""
    import builtins

    assert [name for name in locus_async.__all__ if hasattr(builtins, name)] == []
    namespace: dict[str, object] = {}
    exec("from locus_async import *", namespace)  # noqa: S102 - what a user's module does
    assert "TimeoutError" not in namespace
    assert issubclass(locus_async.RequestTimeout, builtins.TimeoutError)
    assert issubclass(locus_async.RequestTimeout, locus_async.TransportError)


def test_the_old_timeout_name_still_works_with_a_warning() -> None:
    """``locus_async.TimeoutError`` is ``RequestTimeout``, with a DeprecationWarning that
    names the new one; an unknown name is an AttributeError."""
    with pytest.warns(DeprecationWarning, match=r"now locus_async\.RequestTimeout"):
        assert locus_async.TimeoutError is locus_async.RequestTimeout
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        locus_async.Nope  # noqa: B018


def test_reprs_and_tracebacks_show_the_public_path() -> None:
    """Every class or function the root exports names a public module (attrs classes
    keep the module their annotations live in, and print no module anyway)."""
    import attrs

    private = []
    for name in locus_async.__all__:
        value = getattr(locus_async, name)
        module = getattr(value, "__module__", None)
        if module is None or (isinstance(value, type) and attrs.has(value)):
            continue
        if any(part.startswith("_") for part in module.split(".")[1:]):
            private.append(f"{name} ({module})")
    assert private == []
    assert repr(locus_async.Priority.INTERACTIVE).startswith("<Priority.")
    assert locus_async.LocalLimiter.__module__ == "locus_async"
