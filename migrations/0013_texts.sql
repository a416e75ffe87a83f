-- Prompts and responses, each message stored once per project (`app/src/store/texts.rs`).
-- Stored inline, they were 40 % of a call's bytes, and most of them repeat: a feature's system
-- prompt and tool definitions on every call, a conversation's history on each of its turns.
--
-- `refs` counts the calls that name a row (once per mention). AUTOINCREMENT: an id is never
-- given twice, so a number a cache still holds can't come to name another text.
CREATE TABLE texts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL,
    refs        INTEGER NOT NULL,
    body        TEXT NOT NULL
);
-- What a call keeps: a JSON array of ids (a prompt that is an array of messages), or one id
-- (any other text). Calls stored before keep `prompt` and `response` inline.
ALTER TABLE events ADD COLUMN prompt_texts TEXT;
ALTER TABLE events ADD COLUMN response_texts TEXT;
-- A deleted call (user deletion, retention, anything later) releases its rows; a row no call
-- names is deleted with it.
CREATE TRIGGER events_release_texts AFTER DELETE ON events
WHEN old.prompt_texts IS NOT NULL OR old.response_texts IS NOT NULL
BEGIN
    UPDATE texts SET refs = refs
        - (SELECT COUNT(*) FROM json_each(old.prompt_texts) AS p WHERE p.value = texts.id)
        - (SELECT COUNT(*) FROM json_each(old.response_texts) AS r WHERE r.value = texts.id)
     WHERE id IN (SELECT value FROM json_each(old.prompt_texts)
                  UNION ALL SELECT value FROM json_each(old.response_texts));
    DELETE FROM texts
     WHERE refs <= 0 AND id IN (SELECT value FROM json_each(old.prompt_texts)
                                UNION ALL SELECT value FROM json_each(old.response_texts));
END;
