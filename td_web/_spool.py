"""The optional on-disk spool: serialized signals that could not be sent yet, in SQLite.

Only the sender thread touches it. Rows are claimed by deleting them in the same transaction
that reads them, so two processes sharing a spool file never send the same row twice; a batch
that then fails is written back. Schema::

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

from ._log import logger

Entry = tuple[bytes, int]

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
    def __init__(self, path: str, url: str, max_signals: int) -> None:
        self.path = path
        self.url = url
        self.max_signals = max_signals
        #: Rows written by this process carry it; rows from earlier runs are foreign.
        self.owner = uuid.uuid4().hex
        self._db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

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
