"""A dataset's files: its checkpoint, one window's rows written as pieces in partitions,
the rows a window already has, staged replacements of compacted rows, the upgrade of
the first releases' flat layout, and rebuilding the index of finished windows.

Owns: the file schema (``id`` int64, ``kind`` "component" or "site", ``ts`` timestamp[us,
UTC], one float64 per field; rows sorted by ``(id, ts)``), turning a window's series into
pieces (``_core.layout``), writing each piece whole or not at all through the ``Store``,
and knowing where a window's current rows are (its piece files, or a compacted file).
Must never: write a row twice, or leave a partial file.

A window whose rows were compacted is never written as a piece again (its rows would be
there twice): what a refetch finds different is *staged* in the state
(``out.locus/staged/<partition>/<piece>``) and put into the compacted file by the
compaction at the end of the run (``locus.compaction``).
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from locus_async._shell.store import Store, writer
from locus_async.locus._core.layout import (
    Ranges,
    is_part,
    parse_piece,
    partition_unit,
    period_bounds,
    piece_name,
)
from locus_async.locus._core.series import Columns
from locus_async.locus._core.windows import parse_granularity
from locus_async.locus.checkpoint import (
    CHECKPOINT,
    LEGACY_CHECKPOINT,
    Checkpoint,
    CheckpointError,
    checkpoint_problem,
    entity_key,
    file_columns,
)

if TYPE_CHECKING:
    import pyarrow

__all__ = ["STAGED", "DatasetFiles", "arrow_schema", "covers_metadata", "part_covers"]

logger = logging.getLogger("locus_async.locus.dataset")

#: Where replacements of compacted rows wait for the compaction (in the state).
STAGED: Final = "staged"
#: Files of the first releases in ``out`` that are ours to remove after an upgrade.
_LEGACY_STATE: Final = (".locus-backfill.lock", "_locus_backfill.owner.json", LEGACY_CHECKPOINT)
_ROW_GROUP: Final = 262_144
#: The earlier releases' temporaries, matched exactly (a user's ``.tmp-notes.txt`` is not
#: ours): ``.locus-tmp-<32 hex>-<name>`` and ``.tmp-<32 hex>-<window file or checkpoint>``.
_LEGACY_TMP: Final = re.compile(
    r"^\.locus-tmp-[0-9a-f]{32}-.+$"
    r"|^\.tmp-[0-9a-f]{32}-((component|site)-\d+_\d{8}T\d{6}Z_\d{8}T\d{6}Z\.(parquet|csv)"
    r"|_locus_backfill\.json)$"
)


def arrow_schema(fields: Sequence[str]) -> pyarrow.Schema:
    """The schema of every data file of a dataset with ``fields``."""
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.int64()),
            ("kind", pa.string()),
            ("ts", pa.timestamp("us", tz="UTC")),
            *((name, pa.float64()) for name in fields),
        ]
    )


def _kind(kind: str) -> str:
    return kind[:-1]  # components -> component


class DatasetFiles:
    """The files of the dataset in ``store`` (one run at a time, holding its lock)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._listing: dict[str, set[str]] = {}
        self._covers: dict[str, dict[str, Ranges]] = {}

    # -- the checkpoint ---------------------------------------------------------------

    def load(self) -> tuple[Checkpoint, int, bool] | None:
        """The checkpoint, its version, and whether it is in the first releases' flat
        layout (to be upgraded); None if there is none."""
        legacy = False
        where = self.store.state_url(CHECKPOINT)
        try:
            raw = self.store.read_state(CHECKPOINT)
            if raw is None:
                raw = self.store.read_bytes("", LEGACY_CHECKPOINT)
                legacy = raw is not None
                where = self.store.data_url("", LEGACY_CHECKPOINT)
        except OSError as exc:
            raise CheckpointError(where, exc.strerror or str(exc)) from None
        if raw is None:
            return None
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise CheckpointError(where, f"not JSON: {exc}") from None
        problem = checkpoint_problem(body)
        if problem:
            raise CheckpointError(where, problem)
        return Checkpoint.from_json(body), body["version"], legacy

    @staticmethod
    def encode(dataset: Checkpoint) -> bytes:
        """The checkpoint's bytes (made where the dataset is not being changed)."""
        return json.dumps(dataset.to_json(), indent=1).encode("utf-8")

    def save(self, data: bytes) -> None:
        self.store.write_state(CHECKPOINT, data)

    # -- listings ---------------------------------------------------------------------

    def listing(self, partition: str) -> set[str]:
        """The files of one partition, listed once per run and kept current."""
        found = self._listing.get(partition)
        if found is None:
            found = self._listing[partition] = set(self.store.files(partition))
        return found

    def forget(self) -> None:
        self._listing.clear()
        self._covers.clear()

    def covered(self, partition: str, key: str, lo: int, hi: int) -> bool:
        """Whether a compacted file of the partition holds rows of ``key`` in ``[lo, hi)``
        (from the spans their metadata records, read once per run)."""
        found = self._covers.get(partition)
        if found is None:
            found = {}
            for name in sorted(n for n in self.listing(partition) if is_part(n)):
                for entity, spans in part_covers(self.store, partition, name).items():
                    ranges = found.setdefault(entity, Ranges())
                    for start, end in spans:
                        ranges.add(start, end)
            self._covers[partition] = found
        held = found.get(key)
        return held is not None and any(s < hi and e > lo for s, e in held)

    # -- one window -------------------------------------------------------------------

    def write_window(  # noqa: PLR0917 - a window is kind, id, start, end and its rows
        self,
        dataset: Checkpoint,
        kind: str,
        ident: int,
        start: int,
        end: int,
        rows: Columns | pyarrow.Table,
    ) -> tuple[bool, set[str]]:
        """Write a window's rows (one entity's ``id``, ``ts``, the dataset's fields) as its
        pieces; True if anything changed. Also the partitions where changed rows were
        staged for the compaction (the window's rows were compacted there)."""
        tz = ZoneInfo(dataset.tz)
        unit = partition_unit(parse_granularity(dataset.gran))
        suffix = ".parquet" if dataset.format == "parquet" else ".csv"
        name = piece_name(kind, ident, start, end, suffix)
        head = name.rpartition("_")[0]
        key = entity_key(kind, ident)
        pieces = self._pieces(dataset, kind, rows, period_bounds(start, end, tz, unit))
        changed = False
        staged: set[str] = set()
        for (partition, lo, hi), piece in pieces:
            listing = self.listing(partition)
            stale = sorted(n for n in listing if n != name and n.rpartition("_")[0] == head)
            current = None
            if name not in listing and not stale and self.covered(partition, key, lo, hi):
                current = self.compacted_rows(dataset, partition, kind, ident, lo=lo, hi=hi)
            if current is None or current.num_rows == 0:
                old = self.store.read_bytes(partition, name) if name in listing else None
                if not self._same(dataset, kind, old, piece):
                    # Written even when empty: a window is finished when all its pieces
                    # are there, which a resume after a kill can tell from a listing.
                    self.store.write(partition, name, writer(self._encode(dataset, kind, piece)))
                    listing.add(name)
                    changed = True
                if stale:
                    self.store.delete(partition, stale)
                    listing.difference_update(stale)
                    logger.info(
                        "removed %s: a longer window with the same start replaced it", stale
                    )
                continue
            # The window's rows in this partition were compacted: compare, stage if changed.
            if current.equals(piece):
                continue
            self.store.write_state(
                f"{STAGED}/{partition}/{name}", self._encode(dataset, kind, piece)
            )
            staged.add(partition)
            changed = True
        return changed, staged

    def _pieces(
        self,
        dataset: Checkpoint,
        kind: str,
        rows: Columns | pyarrow.Table,
        bounds: list[tuple[str, int, int]],
    ) -> list[tuple[tuple[str, int, int], Any]]:
        """The rows of each partition: Arrow tables in the file schema (Parquet), or
        Columns (CSV)."""
        if dataset.format != "parquet":
            assert isinstance(rows, Columns)
            order = sorted(range(len(rows)), key=rows.ts.__getitem__)
            ordered = rows.select(order)
            stamps = list(ordered.ts)
            return [
                (b, ordered.select(range(bisect.bisect_left(stamps, b[1]),
                                         bisect.bisect_left(stamps, b[2]))))
                for b in bounds
            ]  # fmt: skip
        import pyarrow as pa
        import pyarrow.compute as pc

        table = self.piece_table(dataset, kind, rows) if isinstance(rows, Columns) else (
            self._with_kind(dataset, kind, rows)
        )  # fmt: skip
        table = table.sort_by([("ts", "ascending")])
        seconds = table["ts"].cast(pa.int64())
        out = []
        for bound in bounds:
            first = pc.sum(pc.less(seconds, bound[1] * 1_000_000)).as_py() or 0
            last = pc.sum(pc.less(seconds, bound[2] * 1_000_000)).as_py() or 0
            out.append((bound, table.slice(first, last - first)))
        return out

    def _with_kind(self, dataset: Checkpoint, kind: str, table: pyarrow.Table) -> pyarrow.Table:
        """An (``id``, ``ts``, fields) table in the file schema: the kind added, a field the
        entity lacks all nulls."""
        import pyarrow as pa

        count = table.num_rows
        arrays = [
            table["id"],
            pa.array([_kind(kind)] * count, type=pa.string()),
            table["ts"].cast(pa.timestamp("us", tz="UTC")),
            *(
                table[name] if name in table.column_names else pa.nulls(count, pa.float64())
                for name in dataset.fields
            ),
        ]
        return pa.Table.from_arrays(arrays, schema=arrow_schema(dataset.fields))

    def _encode(self, dataset: Checkpoint, kind: str, piece: Any) -> bytes:
        if dataset.format == "parquet":
            import pyarrow.parquet as pq

            buffer = io.BytesIO()
            pq.write_table(piece, buffer, compression="zstd")
            return buffer.getvalue()
        return _csv_bytes(dataset.fields, _kind(kind), piece)

    def adopt(self, dataset: Checkpoint, kind: str, ident: int, start: int, end: int) -> bool:
        """Whether every piece of a window is there (a killed run wrote it after its last
        checkpoint): then it is recorded as finished."""
        tz = ZoneInfo(dataset.tz)
        unit = partition_unit(parse_granularity(dataset.gran))
        suffix = ".parquet" if dataset.format == "parquet" else ".csv"
        name = piece_name(kind, ident, start, end, suffix)
        if all(name in self.listing(p) for p, _, _ in period_bounds(start, end, tz, unit)):
            dataset.ranges(entity_key(kind, ident)).add(start, end)
            return True
        return False

    def piece_table(self, dataset: Checkpoint, kind: str, piece: Columns) -> pyarrow.Table:
        import pyarrow as pa

        schema = arrow_schema(dataset.fields)
        stamps = pa.array(piece.ts, type=pa.int64()).cast(pa.timestamp("s", tz="UTC"))
        arrays = [
            pa.array(piece.ids, type=pa.int64()),
            pa.array([_kind(kind)] * len(piece), type=pa.string()),
            stamps.cast(pa.timestamp("us", tz="UTC")),
            *(pa.array(piece.values[name], type=pa.float64()) for name in dataset.fields),
        ]
        return pa.Table.from_arrays(arrays, schema=schema)

    def _same(self, dataset: Checkpoint, kind: str, old: bytes | None, piece: Any) -> bool:
        if old is None:
            return False
        if dataset.format != "parquet":
            return old == self._encode(dataset, kind, piece)
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(pa.BufferReader(old))
        except Exception:  # unreadable: replaced
            return False
        return bool(table.equals(piece))

    def compacted_rows(
        self, dataset: Checkpoint, partition: str, kind: str, ident: int, *, lo: int, hi: int
    ) -> pyarrow.Table | None:
        """The rows of one entity in ``[lo, hi)`` in a partition's compacted files."""
        if dataset.format != "parquet":
            return None
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        parts = sorted(n for n in self.listing(partition) if is_part(n))
        if not parts:
            return None
        begin = pa.scalar(lo * 1_000_000, pa.timestamp("us", tz="UTC"))
        stop = pa.scalar(hi * 1_000_000, pa.timestamp("us", tz="UTC"))
        found = []
        for name in parts:
            with self.store.open(partition, name) as handle:
                table = pq.read_table(
                    handle, filters=[("id", "=", ident), ("kind", "=", _kind(kind))]
                )
            mask = pc.and_(pc.greater_equal(table["ts"], begin), pc.less(table["ts"], stop))
            found.append(table.filter(mask))
        return (
            pa.concat_tables(found)
            .sort_by([("ts", "ascending")])
            .cast(arrow_schema(dataset.fields))
        )

    # -- upgrade and repair -------------------------------------------------------------

    def upgrade_legacy(self, dataset: Checkpoint) -> int:
        """Move the first releases' flat files (one per window, in ``out``) into pieces in
        partitions and record their windows as finished; each file is removed once its
        pieces are written, so a crash part-way is resumed by the next run. The number
        of windows moved."""
        moved = 0
        for name in self.store.files(""):
            found = parse_piece(name)
            if found is None:
                continue
            kind, ident, start, end = found
            data = self.store.read_bytes("", name)
            if data is None:
                continue
            columns = _read_columns(data, dataset)
            if columns is None:  # damaged: fetched again
                self.store.delete("", [name])
                continue
            self.write_window(dataset, kind, ident, start, end, columns)
            dataset.ranges(entity_key(kind, ident)).add(start, end)
            self.store.delete("", [name])
            moved += 1
        return moved

    def finish_upgrade(self) -> None:
        """Remove the first releases' state files from ``out`` (after the new checkpoint
        is written), and their temporaries."""
        names = [n for n in self.store.files("") if n in _LEGACY_STATE or _LEGACY_TMP.match(n)]
        self.store.delete("", names)

    def rebuild(self, dataset: Checkpoint) -> tuple[int, int]:
        """Rebuild the index of finished windows from the files (``repair``): a piece
        gives its window's span in its partition, a compacted file the spans it records.
        A window is finished when every partition it touches has it. Damaged pieces are
        removed. (pieces adopted, pieces removed)."""
        tz = ZoneInfo(dataset.tz)
        unit = partition_unit(parse_granularity(dataset.gran))
        columns = ["id", "kind", "ts", *dataset.fields]
        spans: dict[str, list[tuple[int, int]]] = {}
        adopted = damaged = 0
        for partition in self.store.partitions():
            for name in self.listing(partition):
                found = parse_piece(name)
                if found is not None:
                    data = self.store.read_bytes(partition, name) or b""
                    if file_columns(data, dataset.format) != columns:
                        self.store.delete(partition, [name])
                        damaged += 1
                        continue
                    kind, ident, start, end = found
                    for part, lo, hi in period_bounds(start, end, tz, unit):
                        if part == partition:
                            spans.setdefault(entity_key(kind, ident), []).append((lo, hi))
                    adopted += 1
                elif is_part(name):
                    for key, ranges in part_covers(self.store, partition, name).items():
                        spans.setdefault(key, []).extend(ranges)
        dataset.done = {key: Ranges(found) for key, found in spans.items()}
        self.forget()
        return adopted, damaged


def _csv_bytes(fields: Sequence[str], kind: str, columns: Columns) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "kind", "ts", *fields])
    values = [columns.values[name] for name in fields]
    for index, (ident, stamp) in enumerate(zip(columns.ids, columns.ts, strict=True)):
        writer.writerow(
            [
                ident,
                kind,
                datetime.fromtimestamp(stamp, UTC).isoformat(),
                *("" if column[index] is None else repr(column[index]) for column in values),
            ]
        )
    return buffer.getvalue().encode("utf-8")


def _read_columns(data: bytes, dataset: Checkpoint) -> Columns | None:
    """The rows of a first-release file (``id``, ``ts``, fields), or None if damaged."""
    from array import array

    fields = tuple(dataset.fields)
    try:
        if dataset.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pq.read_table(pa.BufferReader(data))
            if table.column_names != ["id", "ts", *fields]:
                return None
            ts = table["ts"].cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
            out = Columns(
                fields,
                array("q", table["id"].to_pylist()),
                array("q", [t // 1_000_000 for t in ts]),
            )
            for name in fields:
                out.values[name] = table[name].to_pylist()
            return out
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
        if not rows or rows[0] != ["id", "ts", *fields]:
            return None
        out = Columns(
            fields,
            array("q", [int(r[0]) for r in rows[1:]]),
            array("q", [int(datetime.fromisoformat(r[1]).timestamp()) for r in rows[1:]]),
        )
        for index, name in enumerate(fields):
            out.values[name] = [float(r[2 + index]) if r[2 + index] else None for r in rows[1:]]
    except Exception:
        return None
    return out


def covers_metadata(spans: Mapping[str, Iterable[tuple[int, int]]]) -> dict[bytes, bytes]:
    """A compacted file's metadata recording the spans it holds (for ``rebuild``)."""
    body: dict[str, Any] = {key: [[lo, hi] for lo, hi in Ranges(v)] for key, v in spans.items()}
    return {b"locus.covers": json.dumps(body, separators=(",", ":")).encode("utf-8")}


def part_covers(store: Store, partition: str, name: str) -> dict[str, list[tuple[int, int]]]:
    """The spans of each entity a compacted file holds (its metadata)."""
    import pyarrow.parquet as pq

    with store.open(partition, name) as handle:
        meta = pq.read_metadata(handle).metadata or {}
    raw = meta.get(b"locus.covers")
    if raw is None:
        return {}
    body: dict[str, list[list[int]]] = json.loads(raw)
    return {key: [(lo, hi) for lo, hi in spans] for key, spans in body.items()}
