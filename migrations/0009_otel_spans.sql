-- OpenTelemetry spans received on `POST /v1/traces`, kept a while for attribution: a call's tags,
-- agent, tools and route come from other spans of its trace (its ancestors, the root, the
-- `execute_tool` spans), which exporters often send in a later request than the call itself.
-- A call waits here (`call` holds it, mapped, as JSON) until its trace's root has arrived or the
-- wait has passed, then is stored in `events` like any other call and `call` is cleared; the
-- other spans stay an hour for children that arrive late, then go.
CREATE TABLE otel_spans (
    project_id  INTEGER NOT NULL,
    trace_id    TEXT NOT NULL,
    span_id     TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    -- 1 when the span is the trace's root here (no parent, or a parent in another service).
    is_root     INTEGER NOT NULL,
    -- JSON: parent, times, name, tags, route, agent, tool (see server/src/otel/map.rs).
    context     TEXT NOT NULL,
    call        TEXT,
    PRIMARY KEY (project_id, trace_id, span_id)
) WITHOUT ROWID;
CREATE INDEX otel_spans_waiting ON otel_spans (received_at) WHERE call IS NOT NULL;
CREATE INDEX otel_spans_received ON otel_spans (received_at);
