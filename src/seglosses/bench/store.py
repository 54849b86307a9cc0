"""The results store: ``results.sqlite``, the only code of the package touching SQLite.

Tables (see ``docs/bench.md``):

- ``meta(key, value)``: the sweep configuration (JSON), its fingerprint, the data description,
  split sizes, versions, and one entry per session (start, end, device).
- ``runs``: one row per run: loss, seed, fingerprint, config (JSON), status (``finished`` or
  ``failed``), error, the means over test cases (dice, sensitivity, specificity, hd95 over the
  cases where it is finite, hd95_inf = number of infinite cases), n_cases, epochs, best_epoch,
  train_seconds, eval_seconds, started_at, finished_at, device.
- ``curves(run_id, epoch, train_loss, val_dice, lr, seconds)``.
- ``cases(run_id, case_id, n_slices, dice, sensitivity, specificity, hd95, hd95_excluded)``;
  ``hd95`` is stored as IEEE infinity when infinite.
- ``examples(run_id, position, slice_index, height, width, mask)``: predicted masks of the fixed
  example slices (zlib-compressed bit arrays).
- ``example_inputs(position, slice_index, case_id, height, width, image, mask)``: those test
  slices and their reference masks (image as zlib-compressed float16).

Every finished run is written in one transaction (WAL journal, ``synchronous=FULL``): a process
killed at any moment loses no committed run and never leaves part of a run visible.
"""

from __future__ import annotations

import json
import math
import sqlite3
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .presets import BenchConfig
from .runner import CaseRecord, EpochRecord, RunResult

FILENAME = "results.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    loss TEXT NOT NULL,
    seed INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('finished', 'failed')),
    error TEXT,
    dice REAL,
    sensitivity REAL,
    specificity REAL,
    hd95 REAL,
    hd95_inf INTEGER,
    n_cases INTEGER,
    epochs INTEGER,
    best_epoch INTEGER,
    train_seconds REAL,
    eval_seconds REAL,
    started_at TEXT,
    finished_at TEXT,
    device TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS runs_one_finished
    ON runs (loss, seed, fingerprint) WHERE status = 'finished';
CREATE TABLE IF NOT EXISTS curves (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    train_loss REAL,
    val_dice REAL,
    lr REAL,
    seconds REAL,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE IF NOT EXISTS cases (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    case_id TEXT NOT NULL,
    n_slices INTEGER,
    dice REAL,
    sensitivity REAL,
    specificity REAL,
    hd95 REAL,
    hd95_excluded INTEGER,
    PRIMARY KEY (run_id, case_id)
);
CREATE TABLE IF NOT EXISTS examples (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    slice_index INTEGER NOT NULL,
    height INTEGER NOT NULL,
    width INTEGER NOT NULL,
    mask BLOB NOT NULL,
    PRIMARY KEY (run_id, position)
);
CREATE TABLE IF NOT EXISTS example_inputs (
    position INTEGER PRIMARY KEY,
    slice_index INTEGER NOT NULL,
    case_id TEXT NOT NULL,
    height INTEGER NOT NULL,
    width INTEGER NOT NULL,
    image BLOB NOT NULL,
    mask BLOB NOT NULL
);
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def pack_mask(mask: np.ndarray) -> bytes:
    """Bool (H, W) -> compressed bytes."""
    return zlib.compress(np.packbits(np.asarray(mask, dtype=bool).reshape(-1)).tobytes(), 6)


def unpack_mask(blob: bytes, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`pack_mask`."""
    bits = np.unpackbits(np.frombuffer(zlib.decompress(blob), dtype=np.uint8))
    return bits[: height * width].reshape(height, width).astype(bool)


def pack_image(image: np.ndarray) -> bytes:
    """Float (H, W) -> compressed float16 bytes."""
    return zlib.compress(np.asarray(image, dtype=np.float16).tobytes(), 6)


def unpack_image(blob: bytes, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`pack_image` (float32)."""
    data = np.frombuffer(zlib.decompress(blob), dtype=np.float16)
    return data.reshape(height, width).astype(np.float32)


def _real(value: float | None) -> float | None:
    """SQLite turns NaN into NULL anyway; make it explicit. Infinity is kept."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


class ResultStore:
    """A sweep's ``results.sqlite``.

    Args:
        path: the database file, or the results folder holding ``results.sqlite``.
        create: create the file and tables if missing; otherwise a missing file raises
            ``FileNotFoundError``.
    """

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        path = Path(path)
        if path.is_dir() or path.suffix != ".sqlite":
            path = path / FILENAME
        if not create and not path.is_file():
            raise FileNotFoundError(f"no results store at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        if create:
            self._conn.executescript(_SCHEMA)
        else:
            self._check_schema()

    # -- plumbing ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (the WAL is checkpointed into the main file)."""
        self._conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)

    def _check_schema(self) -> None:
        names = {r[0] for r in self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = {"meta", "runs", "curves", "cases"} - names
        if missing:
            raise ValueError(f"{self.path} is not a seglosses results store "
                             f"(missing tables: {', '.join(sorted(missing))})")

    # -- meta -------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """Every meta entry, JSON-decoded."""
        return {r["key"]: json.loads(r["value"]) for r in self._conn.execute(
            "SELECT key, value FROM meta")}

    def set_meta(self, **entries: Any) -> None:
        """Write meta entries (JSON-encoded) in one transaction."""
        with self._transaction() as cur:
            self._put_meta(cur, entries)

    @staticmethod
    def _put_meta(cur: sqlite3.Cursor, entries: dict[str, Any]) -> None:
        cur.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [(k, json.dumps(v)) for k, v in entries.items()],
        )

    def is_empty(self) -> bool:
        """True when no sweep was ever started in this store."""
        return self._conn.execute("SELECT COUNT(*) FROM meta").fetchone()[0] == 0

    def start_sweep(self, config: BenchConfig, data_info: dict[str, Any],
                    example_inputs: Iterable[tuple[int, str, np.ndarray, np.ndarray]]) -> None:
        """Record the sweep configuration, the data and the example slices (one transaction).

        Called once, on the first session of a results folder.
        """
        with self._transaction() as cur:
            self._put_meta(cur, {
                "schema_version": SCHEMA_VERSION,
                "created_at": _now(),
                "config": config.to_dict(),
                "fingerprint": config.fingerprint(),
                "data": data_info,
                "sessions": [],
            })
            cur.execute("DELETE FROM example_inputs")
            for position, (slice_index, case_id, image, mask) in enumerate(example_inputs):
                h, w = image.shape
                cur.execute(
                    "INSERT INTO example_inputs (position, slice_index, case_id, height, width, "
                    "image, mask) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (position, int(slice_index), str(case_id), h, w, pack_image(image),
                     pack_mask(mask)),
                )

    def add_session(self, session: dict[str, Any]) -> None:
        """Append (or update, by ``started_at``) one session entry in the meta table."""
        with self._transaction() as cur:
            row = cur.execute("SELECT value FROM meta WHERE key = 'sessions'").fetchone()
            sessions = json.loads(row[0]) if row else []
            sessions = [s for s in sessions if s.get("started_at") != session.get("started_at")]
            sessions.append(session)
            self._put_meta(cur, {"sessions": sessions})

    # -- runs -------------------------------------------------------------------------------
    def finished(self, fingerprint: str) -> set[tuple[str, int]]:
        """(loss, seed) of the finished runs of one configuration."""
        return {(r[0], int(r[1])) for r in self._conn.execute(
            "SELECT loss, seed FROM runs WHERE status = 'finished' AND fingerprint = ?",
            (fingerprint,))}

    def write_run(self, result: RunResult, config: BenchConfig, *, device: str = "",
                  example_indices: Iterable[int] = ()) -> int:
        """Store a finished run with its curves, cases and example masks in ONE transaction.

        Earlier failed attempts of the same (loss, seed, configuration) are removed in the same
        transaction. Returns the run id.
        """
        means = result.means()
        fp = config.fingerprint()
        with self._transaction() as cur:
            cur.execute(
                "DELETE FROM runs WHERE loss = ? AND seed = ? AND fingerprint = ? "
                "AND status = 'failed'", (result.loss, result.seed, fp))
            cur.execute(
                "INSERT INTO runs (loss, seed, fingerprint, config, status, dice, sensitivity, "
                "specificity, hd95, hd95_inf, n_cases, epochs, best_epoch, train_seconds, "
                "eval_seconds, started_at, finished_at, device) "
                "VALUES (?, ?, ?, ?, 'finished', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (result.loss, result.seed, fp, json.dumps(config.to_dict()),
                 _real(means["dice"]), _real(means["sensitivity"]),
                 _real(means["specificity"]), _real(means["hd95"]), int(means["hd95_inf"]),
                 len(result.cases), result.epochs, result.best_epoch, result.train_seconds,
                 result.eval_seconds, result.started_at, result.finished_at, device),
            )
            run_id = int(cur.lastrowid)
            cur.executemany(
                "INSERT INTO curves (run_id, epoch, train_loss, val_dice, lr, seconds) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, c.epoch, _real(c.train_loss), _real(c.val_dice), c.lr, c.seconds)
                 for c in result.curves],
            )
            cur.executemany(
                "INSERT INTO cases (run_id, case_id, n_slices, dice, sensitivity, specificity, "
                "hd95, hd95_excluded) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, c.case_id, c.n_slices, _real(c.dice), _real(c.sensitivity),
                  _real(c.specificity), _real(c.hd95), c.hd95_excluded) for c in result.cases],
            )
            if result.examples is not None:
                indices = list(example_indices)
                rows = []
                for position, mask in enumerate(result.examples):
                    h, w = mask.shape
                    slice_index = indices[position] if position < len(indices) else position
                    rows.append((run_id, position, int(slice_index), h, w, pack_mask(mask)))
                cur.executemany(
                    "INSERT INTO examples (run_id, position, slice_index, height, width, mask) "
                    "VALUES (?, ?, ?, ?, ?, ?)", rows)
        return run_id

    def write_failure(self, loss: str, seed: int, config: BenchConfig, error: str, *,
                      started_at: str = "", device: str = "") -> int:
        """Record a run that could not finish (retried by ``--resume``)."""
        fp = config.fingerprint()
        with self._transaction() as cur:
            cur.execute(
                "DELETE FROM runs WHERE loss = ? AND seed = ? AND fingerprint = ? "
                "AND status = 'failed'", (loss, seed, fp))
            cur.execute(
                "INSERT INTO runs (loss, seed, fingerprint, config, status, error, epochs, "
                "started_at, finished_at, device) VALUES (?, ?, ?, ?, 'failed', ?, ?, ?, ?, ?)",
                (loss, seed, fp, json.dumps(config.to_dict()), error, config.epochs,
                 started_at or _now(), _now(), device),
            )
            return int(cur.lastrowid)

    # -- reading ----------------------------------------------------------------------------
    def runs(self, status: str | None = None) -> list[dict[str, Any]]:
        """Runs as dictionaries (``config`` decoded), in insertion order."""
        sql = "SELECT * FROM runs"
        args: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            args = (status,)
        out = []
        for row in self._conn.execute(sql + " ORDER BY id", args):
            d = dict(row)
            d["config"] = json.loads(d["config"])
            out.append(d)
        return out

    def curves(self, run_id: int) -> list[EpochRecord]:
        """Per-epoch records of one run."""
        return [EpochRecord(r["epoch"], _nan(r["train_loss"]), _nan(r["val_dice"]), r["lr"],
                            r["seconds"])
                for r in self._conn.execute(
                    "SELECT * FROM curves WHERE run_id = ? ORDER BY epoch", (run_id,))]

    def cases(self, run_id: int) -> list[CaseRecord]:
        """Per-case test metrics of one run, in case order."""
        return [CaseRecord(r["case_id"], r["n_slices"], _nan(r["dice"]),
                           _nan(r["sensitivity"]), _nan(r["specificity"]), _nan(r["hd95"]),
                           r["hd95_excluded"] or 0)
                for r in self._conn.execute(
                    "SELECT * FROM cases WHERE run_id = ? ORDER BY rowid", (run_id,))]

    def examples(self, run_id: int) -> list[tuple[int, np.ndarray]]:
        """(slice index, predicted bool mask) of the example slices of one run."""
        return [(r["slice_index"], unpack_mask(r["mask"], r["height"], r["width"]))
                for r in self._conn.execute(
                    "SELECT * FROM examples WHERE run_id = ? ORDER BY position", (run_id,))]

    def example_inputs(self) -> list[dict[str, Any]]:
        """The example test slices: slice_index, case_id, image (float32), mask (bool)."""
        return [{"slice_index": r["slice_index"], "case_id": r["case_id"],
                 "image": unpack_image(r["image"], r["height"], r["width"]),
                 "mask": unpack_mask(r["mask"], r["height"], r["width"])}
                for r in self._conn.execute("SELECT * FROM example_inputs ORDER BY position")]

    def table_rows(self, table: str) -> list[tuple[Any, ...]]:
        """Raw rows of a table (for comparisons and debugging)."""
        if table not in {"meta", "runs", "curves", "cases", "examples", "example_inputs"}:
            raise ValueError(f"`table` must name a store table; got {table!r}")
        return [tuple(r) for r in self._conn.execute(f"SELECT * FROM {table} ORDER BY rowid")]


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.cur = conn.cursor()

    def __enter__(self) -> sqlite3.Cursor:
        self.cur.execute("BEGIN IMMEDIATE")
        return self.cur

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.cur.execute("COMMIT")
        else:
            self.cur.execute("ROLLBACK")
        self.cur.close()
