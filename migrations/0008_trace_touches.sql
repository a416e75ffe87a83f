-- Trace records (a `withTrace` block's start, route and tags) as they arrive, in order: a start
-- after a crash reads the saved aggregate and then only what was stored after it, which is the
-- calls with a higher rowid plus the traces named here (a record can move an old trace's start
-- without a call of its own). Rows the saved aggregate already holds are deleted when it is
-- saved; AUTOINCREMENT keeps numbers from being given twice after that.
CREATE TABLE trace_touches (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL,
  trace_id TEXT NOT NULL
);
