-- Projects get a privacy mode and a retention period; the dashboard gets an admin login with
-- sessions; user deletions are logged without the user id.

ALTER TABLE projects ADD COLUMN privacy TEXT NOT NULL DEFAULT 'full' CHECK (privacy IN ('full', 'minimal'));
-- Days of events and rollups kept; NULL keeps everything.
ALTER TABLE projects ADD COLUMN retention_days INTEGER CHECK (retention_days IS NULL OR retention_days >= 1);
-- When the privacy mode last changed (it applies to events ingested after it).
ALTER TABLE projects ADD COLUMN privacy_changed_at INTEGER;

-- Dashboard administrators (argon2id PHC strings).
CREATE TABLE admins (
    id              INTEGER PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);

-- Login sessions: the cookie holds the token, the table its SHA-256.
CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    admin_id    INTEGER NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    project_id  INTEGER REFERENCES projects(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

-- Who deleted which user (by SHA-256 of the id, never the id) and what went.
CREATE TABLE deletion_log (
    id              INTEGER PRIMARY KEY,
    project_id      INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    actor           TEXT NOT NULL,
    user_id_sha256  TEXT NOT NULL,
    events          INTEGER NOT NULL,
    traces          INTEGER NOT NULL
);

-- A user's (or an old period's) events by tag set, for deletion and retention.
CREATE INDEX events_tag_set ON events (project_id, tag_set_id);
CREATE INDEX events_ts ON events (project_id, ts);
