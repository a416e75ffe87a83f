-- The deletion log names a deleted user by HMAC-SHA256 of their id under a secret of this
-- install (store_meta 'install_secret', made at the first deletion), not by a bare SHA-256:
-- a plain hash of an email address or a small number is reversed by guessing. Entries written
-- before keep their date, actor and counts; their reversible hash is dropped.
ALTER TABLE deletion_log RENAME COLUMN user_id_sha256 TO user_id_hmac;
UPDATE deletion_log SET user_id_hmac = '';
