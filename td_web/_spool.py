"""The optional on-disk spool: serialized signals that could not be sent yet, in SQLite.

Only the sender thread touches it. The sender decides what to spool and when; this module how,
and every failure of the disk is caught, logged and counted here. Rows are claimed by deleting
them in the same transaction that reads them, so two processes sharing a spool file never send
the same row twice; a batch that then fails is written back. Schema::

    CREATE TABLE spool (
        id    INTEGER PRIMARY KEY AUTOINCREMENT,  -- oldest first
        url   TEXT NOT NULL,                      -- the ingest URL the signal was meant for
        body  BLOB NOT NULL,                      -- one serialized signal (JSON, UTF-8)
        owner TEXT NOT NULL,                      -- the process that wrote it
        seq   INTEGER NOT NULL                    -- that process's record sequence number
    )
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable

from ._encoding import Entry
from ._log import logger

#: The sender's drop counter: (reason, how many signals).
CountDrop = Callable[[str, int], None]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    owner TEXT NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS spool_by_url ON spool (url, id);
"""


class Spool:
    @classmethod
    def open(cls, path: str, url: str, max_signals: int, count_drop: CountDrop) -> Spool | None:
        """The spool at ``path``, or None (logged) when it cannot be used: the sender then
        runs without one."""
        try:
            return cls(path, url, max_signals, count_drop)
        except Exception:
            logger.exception(
                "td_web: the spool at %s could not be opened; running without it", path
            )
            return None

    def __init__(self, path: str, url: str, max_signals: int, count_drop: CountDrop) -> None:
        self.path = path
        self.url = url
        self.max_signals = max_signals
        self._count_drop = count_drop
        #: Rows written by this process carry it; rows from earlier runs are foreign.
        self.owner = uuid.uuid4().hex
        self._db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        #: Rows waiting for this URL, as of the last read or write.
        self.rows = self.count()

    def close(self) -> None:
        self._db.close()

    def save(self, entries: list[Entry], *, front: bool = False) -> None:
        """:meth:`put` that never raises: a failed write drops the entries and counts them,
        what the cap pushed out is counted too."""
        if not entries:
            return
        try:
            overflow = self.put(entries, front=front)
        except Exception:
            logger.exception(
                "td_web: writing %d signals to the spool failed; dropped", len(entries)
            )
            self._count_drop("spool_error", len(entries))
            return
        if overflow:
            self._count_drop("spool_full", overflow)
        self.rows = self.count()

    def save_unsent(self, taken_out: list[Entry], queued: list[Entry]) -> None:
        """At shutdown: what was taken out for sending goes before every row (it is the
        oldest), what was still queued after them."""
        self.save(taken_out, front=True)
        self.save(queued)
        if taken_out or queued:
            logger.warning(
                "td_web: %d unsent signals were written to the spool at %s; they are sent "
                "when a process with the same spool next runs",
                len(taken_out) + len(queued),
                self.path,
            )

    def take(self, limit: int) -> list[Entry]:
        """:meth:`claim`, keeping :attr:`rows` current."""
        claimed = self.claim(limit)
        self.rows = self.count() if claimed else 0
        return claimed

    def count(self) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM spool WHERE url = ?", (self.url,)).fetchone()
        return int(row[0])

    def put(self, entries: list[Entry], *, front: bool = False) -> int:
        """Store entries in order, after every row or (``front``: signals taken out earlier
        and not delivered) before them. Returns how many old rows the cap pushed out."""
        if not entries:
            return 0
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            rows = [(self.url, body, self.owner, seq) for body, seq in entries]
            if front:
                lowest = db.execute("SELECT MIN(id) FROM spool").fetchone()[0]
                start = (1 if lowest is None else int(lowest)) - len(rows)
                db.executemany(
                    "INSERT INTO spool (id, url, body, owner, seq) VALUES (?, ?, ?, ?, ?)",
                    [(start + i, *row) for i, row in enumerate(rows)],
                )
            else:
                db.executemany(
                    "INSERT INTO spool (url, body, owner, seq) VALUES (?, ?, ?, ?)", rows
                )
            total = int(db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])
            overflow = max(0, total - self.max_signals)
            if overflow:
                db.execute(
                    "DELETE FROM spool WHERE id IN (SELECT id FROM spool ORDER BY id LIMIT ?)",
                    (overflow,),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if overflow:
            logger.warning(
                "td_web: the spool at %s is full (%d signals); the %d oldest were dropped",
                self.path,
                self.max_signals,
                overflow,
            )
        return overflow

    def claim(self, limit: int) -> list[Entry]:
        """Take up to ``limit`` of the oldest rows out of the spool."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            rows = db.execute(
                "SELECT id, body, owner, seq FROM spool WHERE url = ? ORDER BY id LIMIT ?",
                (self.url, limit),
            ).fetchall()
            if rows:
                db.execute("DELETE FROM spool WHERE url = ? AND id <= ?", (self.url, rows[-1][0]))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        # Another run's sequence numbers mean nothing here: 0 sorts before all of ours.
        return [(bytes(body), seq if owner == self.owner else 0) for _, body, owner, seq in rows]

    def oldest_own_seq(self) -> int | None:
        row = self._db.execute(
            "SELECT MIN(seq) FROM spool WHERE url = ? AND owner = ?", (self.url, self.owner)
        ).fetchone()
        return None if row[0] is None else int(row[0])
