-- Traces with a call to a provider, by an agent, or both, per hour and tag set: what the views
-- count as "traces" when a provider or agent filter narrows them (before, a scan of the events).
-- A trace is counted once per kind of key, in the hour of its first call with that key:
-- kind 'p' (provider; agent ''), 'a' (agent; provider '') and 'pa' (both).
CREATE TABLE trace_dim_hourly (
    project_id  INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('p', 'a', 'pa')),
    provider    TEXT NOT NULL,
    agent       TEXT NOT NULL,
    hour        INTEGER NOT NULL,
    tag_set_id  INTEGER NOT NULL,
    traces      INTEGER NOT NULL,
    PRIMARY KEY (project_id, kind, provider, agent, hour, tag_set_id)
) WITHOUT ROWID;
CREATE INDEX trace_dim_hourly_tag_set ON trace_dim_hourly (project_id, tag_set_id);

-- The calls already stored. (MIN(ts) makes the bare tag_set_id that of the first call.)
INSERT INTO trace_dim_hourly (project_id, kind, provider, agent, hour, tag_set_id, traces)
SELECT project_id, kind, provider, agent, hour, tag_set_id, COUNT(*) FROM (
    SELECT project_id, 'p' AS kind, provider, '' AS agent, MIN(ts) / 3600000 AS hour, tag_set_id
      FROM events WHERE trace_id IS NOT NULL GROUP BY project_id, trace_id, provider
    UNION ALL
    SELECT project_id, 'a', '', agent, MIN(ts) / 3600000, tag_set_id
      FROM events WHERE trace_id IS NOT NULL GROUP BY project_id, trace_id, agent
    UNION ALL
    SELECT project_id, 'pa', provider, agent, MIN(ts) / 3600000, tag_set_id
      FROM events WHERE trace_id IS NOT NULL GROUP BY project_id, trace_id, provider, agent
)
GROUP BY project_id, kind, provider, agent, hour, tag_set_id;
