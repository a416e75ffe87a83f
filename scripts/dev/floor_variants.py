#!/usr/bin/env python3
"""What one index costs durable ingest in SQLite, on this machine (docs/performance.md, seventh round).

    python3 scripts/dev/floor_variants.py PREFILL ROWS [DIR]

For each variant, makes a fresh database in DIR (default bench-data): a bare `events` table
(WAL, synchronous=FULL), fills it with PREFILL rows in large transactions, then times ROWS more
rows inserted in transactions of 100 (one commit per batch, as an acknowledged HTTP batch is).
The variants differ only in the one index kept on the table:
  none    no index: rows appended in rowid order;
  seq     an index on a counter that grows with each row (what an ingest sequence would be);
  ts      an index on the call's time, calls from the last 5 s (what live clients send);
  uuid    a unique index on a random UUID (the client's event id, for idempotency).
"""
import os
import random
import sqlite3
import sys
import time
import uuid


def rows(n, first, now):
    for i in range(first, first + n):
        yield (
            str(uuid.uuid4()), str(uuid.uuid4()), now - random.randrange(5000), i,
            random.randrange(200_000), "openai", "gpt-4o-mini", "bench", 100, 200, 0, 5000, 300,
        )


def run(variant, prefill, n, folder):
    path = os.path.join(folder, f"floor-{variant}.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE events (id TEXT NOT NULL, trace_id TEXT, ts INTEGER NOT NULL, seq INTEGER NOT NULL,"
        " tag_set INTEGER, provider TEXT, model TEXT, agent TEXT, input INTEGER, output INTEGER,"
        " cache_read INTEGER, cost INTEGER, latency INTEGER)"
    )
    index = {
        "none": None,
        "seq": "CREATE INDEX events_seq ON events (seq)",
        "ts": "CREATE INDEX events_ts ON events (ts)",
        "uuid": "CREATE UNIQUE INDEX events_id ON events (id)",
    }[variant]
    if index:
        db.execute(index)
    insert = "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
    now = int(time.time() * 1000) - 86_400_000
    batch = list(rows(prefill, 0, now))
    for i in range(0, prefill, 100_000):
        db.execute("BEGIN")
        db.executemany(insert, batch[i : i + 100_000])
        db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    now = int(time.time() * 1000)
    timed = list(rows(n, prefill, now))
    started = time.perf_counter()
    for i in range(0, n, 100):
        db.execute("BEGIN")
        db.executemany(insert, timed[i : i + 100])
        db.execute("COMMIT")
    secs = time.perf_counter() - started
    db.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    print(f"{variant:5} prefill {prefill:>9,} then {n:,} rows in batches of 100: {n / secs:>8,.0f} rows/s")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    prefill, n = int(sys.argv[1]), int(sys.argv[2])
    folder = sys.argv[3] if len(sys.argv) > 3 else "bench-data"
    for variant in ("none", "seq", "ts", "uuid"):
        run(variant, prefill, n, folder)


if __name__ == "__main__":
    main()
