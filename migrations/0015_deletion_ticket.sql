-- Which deletion took which scrub ticket (`DELETE .../users/{id}?wait=false` answers it;
-- `GET /v1/me/ai-apps/deletions/{ticket}` reads it): a ticket is only shown to the project
-- whose deletion took it. Deletions logged before have none (their tickets answer 404).
ALTER TABLE deletion_log ADD COLUMN ticket INTEGER;
CREATE UNIQUE INDEX deletion_log_ticket ON deletion_log (ticket) WHERE ticket IS NOT NULL;
