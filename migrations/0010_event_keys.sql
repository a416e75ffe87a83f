-- Calls are appended in rowid order with no B-tree keyed by the client's event id. The primary
-- key on (project, id) was a random-order B-tree: every stored call wrote a 4 KB page of it at a
-- random place, the biggest single cost of durable ingest. Which call holds an id is now answered
-- by the server from memory (`app/src/store/event_keys.rs`): a 32-bit keyed hash of (project, id)
-- per call, kept in `event_keys` (appended in the calls' rowid order, read once at start), and a
-- match is confirmed by reading the call itself. Rowids are kept, so a saved aggregate stays valid.
-- `n` is the rowid, declared so that it is never given twice (AUTOINCREMENT: a deleted last call's
-- number is not reused, so a key left in memory for it can't name another call) and never changes
-- (VACUUM keeps an INTEGER PRIMARY KEY).
CREATE TABLE events_by_rowid (
    n                   INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id          INTEGER NOT NULL REFERENCES projects(id),
    id                  TEXT NOT NULL,
    trace_id            TEXT,
    ts                  INTEGER NOT NULL,
    kind                TEXT NOT NULL,
    provider            TEXT NOT NULL,
    model               TEXT NOT NULL,
    agent               TEXT NOT NULL,
    route_tag           TEXT,
    tag_set_id          INTEGER NOT NULL REFERENCES tag_sets(id),
    input_tokens        INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    cache_read_tokens   INTEGER NOT NULL,
    cache_creation_tokens INTEGER NOT NULL,
    cache_creation_1h_tokens INTEGER NOT NULL,
    cost_nano           INTEGER,
    cost_source         TEXT NOT NULL CHECK (cost_source IN ('table', 'override', 'unpriced')),
    latency_ms          INTEGER,
    status              TEXT NOT NULL CHECK (status IN ('ok', 'error', 'cancelled')),
    error               TEXT,
    tools               TEXT,
    prompt              TEXT,
    response            TEXT,
    firsts              INTEGER,
    tool_firsts         BLOB,
    usage_detail        TEXT
);
INSERT INTO events_by_rowid (n, project_id, id, trace_id, ts, kind, provider, model, agent, route_tag,
    tag_set_id, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens,
    cache_creation_1h_tokens, cost_nano, cost_source, latency_ms, status, error, tools, prompt,
    response, firsts, tool_firsts, usage_detail)
SELECT rowid, project_id, id, trace_id, ts, kind, provider, model, agent, route_tag,
    tag_set_id, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens,
    cache_creation_1h_tokens, cost_nano, cost_source, latency_ms, status, error, tools, prompt,
    response, firsts, tool_firsts, usage_detail
FROM events ORDER BY rowid;
DROP TABLE events;
ALTER TABLE events_by_rowid RENAME TO events;
CREATE INDEX events_trace ON events (project_id, trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX events_ts ON events (project_id, ts);

-- One row per call: its rowid and the keyed hash of (project, id). Filled by ingest in the
-- call's transaction; the rows of calls stored before this migration are added at the next
-- start (`Store::open`), which hashes their ids.
CREATE TABLE event_keys (
    event   INTEGER PRIMARY KEY,
    h       INTEGER NOT NULL
);
CREATE TRIGGER events_forget_key AFTER DELETE ON events BEGIN
    DELETE FROM event_keys WHERE event = old.rowid;
END;

-- Secrets of this installation, made once. `event_key`: the key of the ids' hash, so no client
-- can choose ids that share a hash.
CREATE TABLE secrets (
    name    TEXT PRIMARY KEY,
    value   BLOB NOT NULL
) WITHOUT ROWID;
INSERT INTO secrets (name, value) VALUES ('event_key', randomblob(16));
