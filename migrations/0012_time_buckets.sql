-- Calls and traces by time in buckets of 65.536 s (`ts >> 16`), not by the millisecond.
--
-- An index by the millisecond puts each arriving call on a random page among the entries of
-- the last few seconds (clients send calls a little after they happen, in no order), so a
-- commit of a few hundred calls rewrote about one index page per call. Within a bucket the
-- entries follow the rowid (calls) or the seq (traces), both given in arrival order, so calls
-- now append at the end of their bucket: a commit writes a handful of this index's pages.
--
-- The only readers are retention and the Traces list's SQL fallback; they name the bucket
-- beside the exact bound: `(ts >> 16) <= (?cut >> 16) AND ts < ?cut` (`>>` rounds down, also
-- for times before 1970).
DROP INDEX events_ts;
CREATE INDEX events_time ON events (project_id, ts >> 16);
DROP INDEX traces_started;
CREATE INDEX traces_time ON traces (project_id, started_at >> 16, seq);
