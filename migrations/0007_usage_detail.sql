-- Usage beyond the four token buckets, as JSON, only when the client sent any: reasoning tokens
-- (part of output), audio input and output tokens (part of input and output), and whether the
-- client estimated the counts (a stream the caller stopped before the provider reported usage).
ALTER TABLE events ADD COLUMN usage_detail TEXT;
