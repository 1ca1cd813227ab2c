-- What the jwt and hybrid modes add: a session's refresh family, signing keys, server secrets
-- and the access-token denylist. Same conventions as 0001: unix seconds, 16-byte ids, 32-byte
-- hashes, STRICT tables.

-- A session's refresh family: the generation of the current refresh token, the hash of its
-- secret, and when it was issued. All three NULL means the session has no refresh family
-- (session mode); the CHECK on the last column refuses a half-written family. (ADD COLUMN
-- checks against columns added before it, so the cross-column rule sits on the last one.)
ALTER TABLE sessions ADD COLUMN refresh_generation INTEGER
    CHECK (refresh_generation BETWEEN 0 AND 4294967295);
ALTER TABLE sessions ADD COLUMN refresh_hash BLOB
    CHECK (length(refresh_hash) = 32);
ALTER TABLE sessions ADD COLUMN refresh_rotated_at INTEGER
    CHECK ((refresh_generation IS NULL) = (refresh_hash IS NULL)
       AND (refresh_hash IS NULL) = (refresh_rotated_at IS NULL));

-- A rotation changes what a cached session says, so other processes must drop their copy as
-- they do for a deletion: the rotation is appended to the same log their caches poll (see
-- src/sqlite/cache.rs). Without it, a second server process on this data directory could go
-- on judging refresh tokens against a family generation that has since moved on. A trigger
-- for the same reason as the deletion one: no code path can forget it.
CREATE TRIGGER sessions_log_refresh_rotation
AFTER UPDATE OF refresh_generation, refresh_hash, refresh_rotated_at ON sessions
BEGIN
    INSERT INTO session_revocations (user_id, session_id, at)
    VALUES (NEW.user_id, NEW.id, unixepoch());
END;

-- JWT signing keys. `private` is PKCS#8 DER (or the raw HS256 secret), AES-256-GCM sealed when
-- `sealed` is 1. `retires_at` NULL: the key has not been superseded.
CREATE TABLE signing_keys (
    kid          TEXT    NOT NULL PRIMARY KEY,
    alg          TEXT    NOT NULL,
    private      BLOB    NOT NULL,
    sealed       INTEGER NOT NULL CHECK (sealed IN (0, 1)),
    created_at   INTEGER NOT NULL,
    activates_at INTEGER NOT NULL,
    retires_at   INTEGER
) STRICT;

CREATE INDEX signing_keys_by_created_at ON signing_keys (created_at, kid);

-- Server-wide secrets created on first start (the refresh chain key, the CSRF key), by name.
CREATE TABLE secrets (
    name  TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL
) STRICT, WITHOUT ROWID;

-- Revoked access tokens, read incrementally by `seq` (AUTOINCREMENT: never reused, so a reader's
-- cursor cannot skip a later entry). `kind` says what `id` is:
--   'session'       `id` is a session id: every token with that `sid`;
--   'token'         `id` is a `jti`: that one token;
--   'issued_before' `id` is a user id: every token of the user with `iat` < `issued_before`.
-- A row lives as long as the tokens it covers could; expired rows are pruned.
CREATE TABLE denylist (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL CHECK (kind IN ('session', 'token', 'issued_before')),
    id            BLOB    NOT NULL CHECK (length(id) = 16),
    issued_before INTEGER CHECK ((kind = 'issued_before') = (issued_before IS NOT NULL)),
    expires_at    INTEGER NOT NULL
) STRICT;

CREATE INDEX denylist_by_expires_at ON denylist (expires_at);
