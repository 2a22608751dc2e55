"""Helpers for tests that look inside a dataset: its state beside ``out``, its data files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def state_dir(out: Path) -> Path:
    """Where a dataset's state lives: ``out.locus`` beside ``out``."""
    return out.with_name(out.name + ".locus")


def checkpoint_path(out: Path) -> Path:
    """The checkpoint of the dataset in ``out``."""
    return state_dir(out) / "checkpoint.json"


def checkpoint(out: Path) -> dict[str, Any]:
    """The decoded checkpoint of the dataset in ``out``."""
    body: dict[str, Any] = json.loads(checkpoint_path(out).read_text())
    return body


def data_files(out: Path, suffix: str = ".parquet") -> list[Path]:
    """Every data file under ``out`` (all partitions), sorted."""
    return sorted(p for p in out.rglob(f"*{suffix}") if p.is_file())


def data_names(out: Path, suffix: str = ".parquet") -> list[str]:
    """``partition/name`` of every data file under ``out``, sorted."""
    return [p.relative_to(out).as_posix() for p in data_files(out, suffix)]


def snapshot(out: Path) -> list[tuple[str, int]]:
    """Every file of the dataset (data and state, temporaries aside) with its mtime."""
    return [
        (p.relative_to(root.parent).as_posix(), p.stat().st_mtime_ns)
        for root in (out, state_dir(out))
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in ("lock", "owner.json")
    ]


def temporaries(out: Path) -> list[Path]:
    """Files a run was writing (in the state's ``tmp/``)."""
    tmp = state_dir(out) / "tmp"
    return sorted(tmp.iterdir()) if tmp.is_dir() else []


def copy_dataset(source: Path, target: Path) -> None:
    """Copy a dataset: its data and its state."""
    import shutil

    shutil.copytree(source, target)
    if state_dir(source).exists():
        shutil.copytree(state_dir(source), state_dir(target))


def remove_dataset(out: Path) -> None:
    """Remove a dataset: its data and its state."""
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(state_dir(out), ignore_errors=True)


def to_legacy(out: Path, body: dict[str, Any]) -> list[str]:
    """Turn a dataset (written with ``compact=False``) into the first releases' flat layout:
    one file per window in ``out`` (``id``, ``ts``, fields), the checkpoint ``body`` as
    ``out/_locus_backfill.json``, no state beside it. The window file names."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    by_window: dict[str, list[Any]] = {}
    for path in data_files(out):
        assert not path.name.startswith("part-"), "write the dataset with compact=False"
        by_window.setdefault(path.name, []).append(pq.read_table(path))
    for partition in [p for p in out.iterdir() if p.is_dir()]:
        shutil.rmtree(partition)
    for name, tables in by_window.items():
        table = pa.concat_tables(tables).sort_by("ts").drop_columns(["kind"])
        pq.write_table(table, out / name)
    shutil.rmtree(state_dir(out))
    (out / "_locus_backfill.json").write_text(json.dumps(body))
    return sorted(by_window)


def finished_windows(out: Path, tz: str = "UTC") -> int:
    """Windows with every piece on disk (a window crossing a partition boundary has one
    piece in each partition it touches)."""
    from zoneinfo import ZoneInfo

    from locus_async.locus._core.layout import parse_piece, period_bounds

    where: dict[str, set[str]] = {}
    for path in data_files(out):
        if parse_piece(path.name) is not None:
            where.setdefault(path.name, set()).add(path.parent.name)
    count = 0
    for name, partitions in where.items():
        found = parse_piece(name)
        assert found is not None
        unit = next(iter(partitions)).split("=")[0]
        needed = {p for p, _, _ in period_bounds(found[2], found[3], ZoneInfo(tz), unit)}
        count += needed <= partitions
    return count
