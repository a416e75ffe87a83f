-- Each trace gets a number, dense per project and given in the order traces are first stored
-- (existing traces: in start order). The in-memory Traces list keeps its facts by this number
-- and reads a page's rows through `traces_seq`, which ingest appends to in order.
ALTER TABLE traces ADD COLUMN seq INTEGER;
UPDATE traces SET seq = n.seq
FROM (SELECT project_id AS p, id AS i,
             ROW_NUMBER() OVER (PARTITION BY project_id ORDER BY started_at, id) - 1 AS seq
      FROM traces) AS n
WHERE traces.project_id = n.p AND traces.id = n.i;
CREATE UNIQUE INDEX traces_seq ON traces (project_id, seq);
