-- The views read the in-memory aggregate, so only deleting a user still looked calls and traces
-- up by tag set: that rare step (which rewrites the whole file afterwards anyway) now scans,
-- and every stored call and trace updates two random-order B-trees fewer.
DROP INDEX events_tag_set;
DROP INDEX traces_tag_set;
