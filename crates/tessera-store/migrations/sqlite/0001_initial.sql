-- tessera's embedded schema. Timestamps are unix seconds; ids are 16-byte blobs and token
-- hashes 32-byte blobs (SHA-256), never the tokens themselves. STRICT tables refuse a value of
-- the wrong type instead of silently storing it.

CREATE TABLE accounts (
    id            BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
) STRICT;

CREATE INDEX accounts_by_created_at ON accounts (created_at, id);

CREATE TABLE sessions (
    id           BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    user_id      BLOB    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    username     TEXT    NOT NULL,
    secret_hash  BLOB    NOT NULL CHECK (length(secret_hash) = 32),
    csrf_hash    BLOB    NOT NULL CHECK (length(csrf_hash) = 32),
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    user_agent   TEXT,
    ip           TEXT
) STRICT;

CREATE INDEX sessions_by_user ON sessions (user_id, created_at);

CREATE TABLE throttle (
    key     TEXT    NOT NULL PRIMARY KEY,
    count   INTEGER NOT NULL,
    last_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE audit (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    user_id    BLOB,
    session_id BLOB,
    username   TEXT,
    ip         TEXT,
    detail     TEXT
) STRICT;

-- Every session deletion, by any process, appended in the deleting transaction. Processes that
-- cache sessions poll it to evict what another process revoked (see src/sqlite/cache.rs).
-- A NULL session_id means every session of the user. Rows are pruned after ten minutes.
CREATE TABLE session_revocations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    BLOB    NOT NULL,
    session_id BLOB,
    at         INTEGER NOT NULL
) STRICT;

-- A trigger rather than application code, so that no deletion can skip the log: not a
-- forgotten code path, not an account deleted with ON DELETE CASCADE, not a hand-run
-- `DELETE` in the sqlite3 shell.
CREATE TRIGGER sessions_log_revocation AFTER DELETE ON sessions
BEGIN
    INSERT INTO session_revocations (user_id, session_id, at)
    VALUES (OLD.user_id, OLD.id, unixepoch());
END;
