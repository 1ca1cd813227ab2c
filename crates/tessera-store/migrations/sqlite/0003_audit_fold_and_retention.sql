-- Audit records that fold repeats, and an age to prune them by (hardening #17: a loop of
-- throttled logins or revocations added a row each, kept forever).
--
-- `count`: how many identical events the record stands for (1 unless its kind folds).
-- `last_at`: when the latest of them happened (`at` is the first); retention prunes by it.
-- `fold_key`: the kind, the 60-second window and every other field of a folding event; the
-- unique index makes every instance add to one record per key (`INSERT … ON CONFLICT`).
-- NULL for kinds stored one record per event (NULLs never conflict).
ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit ADD COLUMN last_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit ADD COLUMN fold_key TEXT;
UPDATE audit SET last_at = at;
CREATE UNIQUE INDEX audit_fold ON audit (fold_key);
CREATE INDEX audit_by_last_at ON audit (last_at);
