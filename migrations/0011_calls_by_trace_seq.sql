-- A trace's calls are found by the trace's number (`traces.seq`, given in the order traces are
-- first stored), not by its id: the index by (project, trace id) was a random-order B-tree that
-- every stored call wrote a page of; the one by (project, trace_seq) grows at its end.
-- A call gets its trace's seq when stored. Calls stored before this migration, and calls whose
-- trace record was deleted (retention, user deletion: their `trace_seq` is set back to NULL),
-- stay in the index by trace id, which now holds only them. So the calls of trace X are those
-- with X's seq plus those with trace id X and no seq.
ALTER TABLE events ADD COLUMN trace_seq INTEGER;
DROP INDEX events_trace;
CREATE INDEX events_trace ON events (project_id, trace_id) WHERE trace_seq IS NULL AND trace_id IS NOT NULL;
CREATE INDEX events_trace_seq ON events (project_id, trace_seq) WHERE trace_seq IS NOT NULL;
