-- tokentally schema v1: projects and keys, raw events and traces, interned tag sets, hourly rollups.
-- Times are integer milliseconds since the Unix epoch (UTC); hours are ms / 3600000.
-- Money is integer nano-USD; NULL cost means "unpriced".

CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    scope       TEXT NOT NULL CHECK (scope IN ('ingest', 'read', 'admin')),
    prefix      TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

-- Each distinct tags map is stored once; user_id is the value of tags.userId.
CREATE TABLE tag_sets (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    canonical   TEXT NOT NULL,
    user_id     TEXT,
    UNIQUE (project_id, canonical)
);
CREATE INDEX tag_sets_user ON tag_sets (project_id, user_id);

-- Side table for tag.<key>=<value> filters.
CREATE TABLE tag_kv (
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    tag_set_id  INTEGER NOT NULL REFERENCES tag_sets(id),
    PRIMARY KEY (key, value, tag_set_id)
) WITHOUT ROWID;

CREATE TABLE traces (
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    id          TEXT NOT NULL,
    route_tag   TEXT,
    tag_set_id  INTEGER NOT NULL REFERENCES tag_sets(id),
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    status      TEXT,
    -- Totals of the trace's events, kept at ingest so the Traces list is an index walk.
    calls               INTEGER NOT NULL DEFAULT 0,
    errors              INTEGER NOT NULL DEFAULT 0,
    unpriced            INTEGER NOT NULL DEFAULT 0,
    tokens              INTEGER NOT NULL DEFAULT 0,
    cost_nano           INTEGER NOT NULL DEFAULT 0,
    last_event_at       INTEGER,
    PRIMARY KEY (project_id, id)
) WITHOUT ROWID;
CREATE INDEX traces_started ON traces (project_id, started_at);
CREATE INDEX traces_tag_set ON traces (project_id, tag_set_id, started_at);

CREATE TABLE events (
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
    status              TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    error               TEXT,
    tools               TEXT,
    prompt              TEXT,
    response            TEXT,
    PRIMARY KEY (project_id, id)
);
CREATE INDEX events_trace ON events (project_id, trace_id) WHERE trace_id IS NOT NULL;

-- One row per (project, hour, tag set, provider, model, agent): what the Users view reads.
CREATE TABLE rollup_hourly (
    project_id          INTEGER NOT NULL,
    hour                INTEGER NOT NULL,
    tag_set_id          INTEGER NOT NULL,
    provider            TEXT NOT NULL,
    model               TEXT NOT NULL,
    agent               TEXT NOT NULL,
    events              INTEGER NOT NULL,
    errors              INTEGER NOT NULL,
    unpriced            INTEGER NOT NULL,
    input_tokens        INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    cache_read_tokens   INTEGER NOT NULL,
    cache_creation_tokens INTEGER NOT NULL,
    cost_nano           INTEGER NOT NULL,
    latency_ms_sum      INTEGER NOT NULL,
    max_ts              INTEGER NOT NULL,
    PRIMARY KEY (project_id, hour, tag_set_id, provider, model, agent)
) WITHOUT ROWID;
-- One user's (or a tag filter's) rollups over a window, and top models for a page of users.
CREATE INDEX rollup_hourly_tag_set ON rollup_hourly (project_id, tag_set_id, hour);

-- Traces counted once, in the hour they were first seen.
CREATE TABLE trace_hourly (
    project_id  INTEGER NOT NULL,
    hour        INTEGER NOT NULL,
    tag_set_id  INTEGER NOT NULL,
    traces      INTEGER NOT NULL,
    PRIMARY KEY (project_id, hour, tag_set_id)
) WITHOUT ROWID;

-- Per-user totals by hour and by UTC day (events, tokens, cost and traces of every tag set whose
-- userId is the user): the unfiltered Users view reads whole days from user_daily and the partial
-- days at the window's edges from user_hourly, so its cost grows with users × days.
CREATE TABLE user_hourly (
    project_id          INTEGER NOT NULL,
    hour                INTEGER NOT NULL,
    user_id             TEXT NOT NULL,
    events              INTEGER NOT NULL,
    unpriced            INTEGER NOT NULL,
    input_tokens        INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    cache_read_tokens   INTEGER NOT NULL,
    cache_creation_tokens INTEGER NOT NULL,
    cost_nano           INTEGER NOT NULL,
    max_ts              INTEGER NOT NULL,
    traces              INTEGER NOT NULL,
    PRIMARY KEY (project_id, hour, user_id)
) WITHOUT ROWID;

CREATE TABLE user_daily (
    project_id          INTEGER NOT NULL,
    day                 INTEGER NOT NULL,
    user_id             TEXT NOT NULL,
    events              INTEGER NOT NULL,
    unpriced            INTEGER NOT NULL,
    input_tokens        INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    cache_read_tokens   INTEGER NOT NULL,
    cache_creation_tokens INTEGER NOT NULL,
    cost_nano           INTEGER NOT NULL,
    max_ts              INTEGER NOT NULL,
    traces              INTEGER NOT NULL,
    PRIMARY KEY (project_id, day, user_id)
) WITHOUT ROWID;

-- Spend per (user, day, model): the top model of a page of users without reading every hour.
CREATE TABLE user_model_daily (
    project_id  INTEGER NOT NULL,
    user_id     TEXT NOT NULL,
    day         INTEGER NOT NULL,
    model       TEXT NOT NULL,
    cost_nano   INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    PRIMARY KEY (project_id, user_id, day, model)
) WITHOUT ROWID;

-- Project-wide totals per (hour, provider, model, agent), all users and none: what the Overview
-- and Models views read when no user or tag filter narrows them.
CREATE TABLE model_hourly (
    project_id          INTEGER NOT NULL,
    hour                INTEGER NOT NULL,
    provider            TEXT NOT NULL,
    model               TEXT NOT NULL,
    agent               TEXT NOT NULL,
    events              INTEGER NOT NULL,
    errors              INTEGER NOT NULL,
    unpriced            INTEGER NOT NULL,
    input_tokens        INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    cache_read_tokens   INTEGER NOT NULL,
    cache_creation_tokens INTEGER NOT NULL,
    cost_nano           INTEGER NOT NULL,
    latency_ms_sum      INTEGER NOT NULL,
    PRIMARY KEY (project_id, hour, provider, model, agent)
) WITHOUT ROWID;

-- Traces per hour, project-wide.
CREATE TABLE project_trace_hourly (
    project_id  INTEGER NOT NULL,
    hour        INTEGER NOT NULL,
    traces      INTEGER NOT NULL,
    PRIMARY KEY (project_id, hour)
) WITHOUT ROWID;

-- One row per (event, tool name) for the Tools view: calls, users and traces per tool, and the
-- spend of the calls that used it.
CREATE TABLE event_tools (
    project_id  INTEGER NOT NULL,
    ts          INTEGER NOT NULL,
    event_id    TEXT NOT NULL,
    tool        TEXT NOT NULL,
    trace_id    TEXT,
    tag_set_id  INTEGER NOT NULL,
    user_id     TEXT,
    provider    TEXT NOT NULL,
    agent       TEXT NOT NULL,
    cost_nano   INTEGER,
    PRIMARY KEY (project_id, ts, event_id, tool)
) WITHOUT ROWID;

-- Latency histograms per (hour, provider, model, agent): bucket b holds latencies up to
-- latency_bucket_upper(b) ms (buckets grow by 15 %), for p50 / p95 without reading events.
CREATE TABLE latency_hourly (
    project_id  INTEGER NOT NULL,
    hour        INTEGER NOT NULL,
    provider    TEXT NOT NULL,
    model       TEXT NOT NULL,
    agent       TEXT NOT NULL,
    bucket      INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (project_id, hour, provider, model, agent, bucket)
) WITHOUT ROWID;
