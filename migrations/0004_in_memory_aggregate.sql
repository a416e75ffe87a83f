-- Store v2: SQLite keeps the events, traces and tag sets; every view reads one in-memory aggregate
-- rebuilt from them at start and updated with each committed batch. The per-view rollup tables
-- written at ingest go.
--
-- Each call records whether it was its trace's first call to its provider, by its agent, with
-- both (bits 1, 2, 4 of `firsts`), and per tool in `tools` (one byte each in `tool_firsts`: bits
-- 1 tool, 2 tool+provider, 4 tool+agent, 8 all three), so a provider, agent or tool filter counts
-- each trace once, from the calls alone. Calls stored before this migration are filled in at the
-- next start (`store_meta.backfill_firsts`), in time order within each trace.
ALTER TABLE events ADD COLUMN firsts INTEGER;
ALTER TABLE events ADD COLUMN tool_firsts BLOB;

CREATE TABLE store_meta (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO store_meta (key, value) SELECT 'backfill_firsts', '1' WHERE EXISTS (SELECT 1 FROM events);

DROP TABLE rollup_hourly;
DROP TABLE trace_hourly;
DROP TABLE user_hourly;
DROP TABLE user_daily;
DROP TABLE user_model_daily;
DROP TABLE model_hourly;
DROP TABLE project_trace_hourly;
DROP TABLE event_tools;
DROP TABLE latency_hourly;
DROP TABLE trace_dim_hourly;
