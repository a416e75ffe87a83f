#!/usr/bin/env bash
# What storing prompts as `texts` rows costs against keeping them inline, per call, in bytes of
# SQLite pages (dbstat), for 200,000 calls of a one-message prompt and a one-message response:
#   shared: every prompt also carries the same system message (stored once as a `texts` row);
#   unique: every message differs (the worst case: nothing repeats).
# Usage: scripts/dev/texts_overhead.sh   (needs the sqlite3 CLI with dbstat)
set -euo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for case in shared unique; do
  if [ "$case" = shared ]; then
    system='{"role":"system","content":"You are the support agent of an online shop."},'
    question="hex(randomblob(12))"
  else
    system=''
    question="hex(randomblob(40))"
  fi
  sqlite3 "$dir/$case.db" <<SQL
CREATE TABLE inline_t (n INTEGER PRIMARY KEY, prompt TEXT, response TEXT);
CREATE TABLE texts (id INTEGER PRIMARY KEY AUTOINCREMENT, project_id INTEGER NOT NULL, refs INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE refs_t (n INTEGER PRIMARY KEY, prompt_texts TEXT, response_texts TEXT);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200000)
INSERT INTO inline_t SELECT i, '[${system}{"role":"user","content":"Question ' || ${question} || '"}]',
  '[{"role":"assistant","content":"Answer ' || hex(randomblob(16)) || '"}]' FROM c;
INSERT INTO texts (project_id, refs, body)
  SELECT 1, 200000, '${system%,}' WHERE '${system}' <> '';
INSERT INTO texts (project_id, refs, body)
  SELECT 1, 1, json_extract(prompt, '\$[#-1]') FROM inline_t ORDER BY n;
INSERT INTO texts (project_id, refs, body)
  SELECT 1, 1, json_extract(response, '\$[0]') FROM inline_t ORDER BY n;
INSERT INTO refs_t SELECT n, '[' || CASE WHEN '${system}' <> '' THEN '1,' || (n + 1) ELSE n END || ']',
  '[' || (n + (SELECT MAX(id) FROM texts) - 200000) || ']' FROM inline_t;
SELECT '${case}: inline ' || printf('%.1f', SUM(CASE WHEN name = 'inline_t' THEN pgsize END) / 200000.0)
  || ' B/call; as texts ' || printf('%.1f', SUM(CASE WHEN name IN ('texts', 'refs_t') THEN pgsize END) / 200000.0)
  || ' B/call (texts ' || printf('%.1f', SUM(CASE WHEN name = 'texts' THEN pgsize END) / 200000.0)
  || ', the calls'' ids ' || printf('%.1f', SUM(CASE WHEN name = 'refs_t' THEN pgsize END) / 200000.0) || ')'
  FROM dbstat WHERE name IN ('inline_t', 'texts', 'refs_t');
SQL
done
