"""Compaction: a partition's final windows merged into one large file, crash-safe and
idempotent.

Owns: choosing what to merge (the pieces of final windows, the partition's compacted
files, and the staged replacements of compacted rows), writing the merged file sorted by
``(id, ts)`` with the spans it holds in its metadata, the journal that makes a killed
compaction finish (or vanish) on the next run, and the rule for "worthwhile" after a run.
Must never: merge a provisional window (it will be replaced), or remove a file before the
file holding its rows is whole.

One partition at a time::

    1. out.locus/compaction.json   {"partition", "target", "sources", "staged"}
    2. out/<partition>/part-<16 hex>.parquet      written whole (temporary + rename, or
                                                  one upload)
    3. the sources and staged files removed, then the journal

A run that finds a journal finishes it: if the target exists, its sources are removed (a
reader in between saw those rows twice, never none); if not, the journal is dropped and
the sources are untouched.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from typing import Any, Final
from zoneinfo import ZoneInfo

import attrs

from locus_async._shell.store import Store, open_store
from locus_async.errors import LocusError
from locus_async.locus._core.layout import is_part, parse_piece, partition_unit, period_bounds
from locus_async.locus._core.windows import parse_granularity
from locus_async.locus.checkpoint import Checkpoint, entity_key
from locus_async.locus.dataset import STAGED, arrow_schema, covers_metadata, part_covers

__all__ = ["JOURNAL", "CompactionResult", "compact", "compact_dataset", "recover"]

logger = logging.getLogger("locus_async.locus.compaction")

JOURNAL: Final = "compaction.json"
#: After a run, a partition still receiving windows is compacted once this many of its
#: pieces are final (a settled partition, with every piece final, at once).
AUTO_PIECES: Final = 64
_ROW_GROUP: Final = 262_144


@attrs.frozen
class CompactionResult:
    """What a compaction did: partitions rewritten, data files before and after in them,
    rows in the files written."""

    partitions: int = 0
    files_before: int = 0
    files_after: int = 0
    rows: int = 0

    def summary(self) -> dict[str, Any]:
        return attrs.asdict(self)


def recover(store: Store) -> bool:
    """Finish or drop a compaction a killed run left (holding the lock); True if one was
    found."""
    raw = store.read_state(JOURNAL)
    if raw is None:
        return False
    try:
        journal = json.loads(raw)
        partition, target = journal["partition"], journal["target"]
        sources, staged = list(journal["sources"]), list(journal["staged"])
    except (ValueError, KeyError, TypeError):
        logger.warning("dropped an unreadable compaction journal")
        store.delete_state(JOURNAL)
        return True
    if target in store.files(partition):
        store.delete(partition, sources)
        for name in staged:
            store.delete_state(name)
        logger.info("finished the compaction of %s a stopped run left", partition)
    else:
        logger.info("dropped the unfinished compaction of %s (nothing was replaced)", partition)
    store.delete_state(JOURNAL)
    return True


def compact(
    store: Store,
    dataset: Checkpoint,
    *,
    auto: bool = False,
    keep_after: int | None = None,
    only: Iterable[str] | None = None,
) -> CompactionResult:
    """Merge each partition's final pieces, compacted files and staged replacements into
    one file. ``auto``: only where worthwhile (see ``AUTO_PIECES``), and partitions with
    staged rows always; ``keep_after``: pieces of windows ending after it stay as they are
    (the run's lookback); ``only``: these partitions (and those with staged rows)."""
    if dataset.format != "parquet":
        return CompactionResult()
    recover(store)
    staged: dict[str, list[str]] = {}
    for name in store.list_state(STAGED):
        staged.setdefault(name.split("/")[1], []).append(name)
    # Partitions with staged rows always (a stopped run may have left some).
    chosen = set(only) if only is not None else set(store.partitions())
    total = CompactionResult()
    for partition in sorted(chosen | set(staged)):
        done = _compact_one(
            store, dataset, partition, staged.get(partition, []), auto=auto, keep_after=keep_after
        )
        total = CompactionResult(
            total.partitions + done.partitions,
            total.files_before + done.files_before,
            total.files_after + done.files_after,
            total.rows + done.rows,
        )
    return total


def _compact_one(  # noqa: PLR0915 - one partition's merge, in the order the journal needs
    store: Store,
    dataset: Checkpoint,
    partition: str,
    staged: list[str],
    *,
    auto: bool,
    keep_after: int | None,
) -> CompactionResult:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tz = ZoneInfo(dataset.tz)
    unit = partition_unit(parse_granularity(dataset.gran))
    files = store.files(partition)
    parts = [n for n in files if is_part(n)]
    pieces = {n: p for n in files if (p := parse_piece(n)) is not None}
    final = []
    for name, (kind, ident, start, end) in pieces.items():
        if name.rsplit(".", 1)[0] in dataset.provisional:
            continue
        if not dataset.ranges(entity_key(kind, ident)).covers(start, end):
            continue  # a window not finished yet (a killed run wrote part of it)
        if keep_after is not None and end > keep_after:
            continue
        final.append(name)
    if not staged:
        if len(final) + len(parts) < 2 or not final:
            return CompactionResult()
        if auto and len(final) < len(pieces) and len(final) < AUTO_PIECES:
            return CompactionResult()
    schema = arrow_schema(dataset.fields)
    covers: dict[str, list[tuple[int, int]]] = {}
    tables = []
    replaced = []
    for name in staged:
        kind, ident, start, end = _parsed(name.rsplit("/", 1)[-1])
        lo, hi = _clip(start, end, partition, tz, unit)
        replaced.append((kind[:-1], ident, lo, hi))
        covers.setdefault(entity_key(kind, ident), []).append((lo, hi))
        raw = store.read_state(name)
        if raw:
            tables.append(pq.read_table(pa.BufferReader(raw)).cast(schema))
    for name in parts:
        with store.open(partition, name) as handle:
            table = pq.read_table(handle).cast(schema)
        for key, spans in part_covers(store, partition, name).items():
            covers.setdefault(key, []).extend(spans)
        for kind, ident, lo, hi in replaced:
            inside = pc.and_(
                pc.and_(pc.equal(table["kind"], kind), pc.equal(table["id"], ident)),
                pc.and_(
                    pc.greater_equal(table["ts"], pa.scalar(lo * 10**6, schema.field("ts").type)),
                    pc.less(table["ts"], pa.scalar(hi * 10**6, schema.field("ts").type)),
                ),
            )
            table = table.filter(pc.invert(inside))
        tables.append(table)
    for name in final:
        kind, ident, start, end = pieces[name]
        with store.open(partition, name) as handle:
            tables.append(pq.read_table(handle).cast(schema))
        covers.setdefault(entity_key(kind, ident), []).append(
            _clip(start, end, partition, tz, unit)
        )
    merged = (
        pa.concat_tables(tables).sort_by(
            [("id", "ascending"), ("ts", "ascending"), ("kind", "ascending")]
        )
        if tables
        else schema.empty_table()
    )
    _refuse_repeats(merged, partition)
    target = f"part-{uuid.uuid4().hex[:16]}.parquet"
    sources = parts + final
    journal = {"partition": partition, "target": target, "sources": sources, "staged": staged}
    store.write_state(JOURNAL, json.dumps(journal).encode("utf-8"))
    table = merged.replace_schema_metadata(covers_metadata(covers))

    def write(handle: Any) -> None:
        pq.write_table(table, handle, compression="zstd", row_group_size=_ROW_GROUP)

    store.write(partition, target, write)
    store.delete(partition, sources)
    for name in staged:
        store.delete_state(name)
    store.delete_state(JOURNAL)
    after = len(pieces) - len(final) + 1
    logger.info("compacted %s: %d files into 1 (%d rows)", partition, len(sources), merged.num_rows)
    return CompactionResult(1, len(files), after, merged.num_rows)


def _parsed(name: str) -> tuple[str, int, int, int]:
    found = parse_piece(name)
    if found is None:
        raise LocusError(f"a staged file has a name that is not a window's: {name}")
    return found


def _clip(start: int, end: int, partition: str, tz: ZoneInfo, unit: str) -> tuple[int, int]:
    for name, lo, hi in period_bounds(start, end, tz, unit):
        if name == partition:
            return lo, hi
    return start, start


def _refuse_repeats(table: Any, partition: str) -> None:
    """A guard: the merged rows must hold each (kind, id, ts) once."""
    import pyarrow.compute as pc

    if table.num_rows < 2:
        return
    head = table.slice(0, table.num_rows - 1)
    tail = table.slice(1)
    same = pc.and_(
        pc.and_(
            pc.equal(head["id"], tail["id"]),
            pc.equal(head["ts"], tail["ts"]),
        ),
        pc.equal(head["kind"], tail["kind"]),
    )
    if pc.any(same).as_py():
        raise LocusError(
            f"compaction of {partition} found rows twice; nothing was replaced (please report)"
        )


def compact_dataset(
    out: object, *, storage_options: dict[str, Any] | None = None
) -> CompactionResult:
    """Compact the dataset in ``out`` now (``locus-async compact``): every partition's
    final windows into one file, holding the dataset's lock. Blocks; idempotent."""
    from locus_async.errors import UsageError
    from locus_async.locus.dataset import DatasetFiles

    store = open_store(out, label="out", storage_options=storage_options)
    found = DatasetFiles(store).load()
    if found is None:
        raise UsageError(f"{store.url} holds no dataset ({store.state_url('checkpoint.json')} "
                         "is missing)")  # fmt: skip
    dataset, _, legacy = found
    if legacy:
        raise UsageError(
            f"{store.url} is in the first releases' layout: run sync (or the backfill) once "
            "to move it into partitions, then compact"
        )
    if dataset.format != "parquet":
        raise UsageError(f"{store.url} is a CSV dataset: only Parquet datasets are compacted")
    with store.lock():
        store.remove_temporaries()
        return compact(store, dataset)
