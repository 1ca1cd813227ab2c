-- The PostgreSQL half of the distributed backend: what must outlive any one instance and be
-- shared by all of them (accounts, the audit trail, signing keys, server secrets). Sessions,
-- throttle counters and the denylist live in Redis. Same conventions as migrations/sqlite:
-- timestamps are unix seconds (BIGINT), ids are 16-byte BYTEA.

-- Usernames arrive normalised (`Username::parse`), so UNIQUE is the whole uniqueness rule.
-- COLLATE "C" compares and sorts bytes, as SQLite does, whatever the database's locale.
CREATE TABLE accounts (
    id            BYTEA   NOT NULL PRIMARY KEY CHECK (octet_length(id) = 16),
    username      TEXT    COLLATE "C" NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX accounts_by_created_at ON accounts (created_at, id);

-- Append-only. `seq` comes from a sequence, so it increases with every insert; concurrent
-- inserts may commit out of `seq` order and a rolled-back insert leaves a gap, neither of which
-- matters to a trail read newest first.
CREATE TABLE audit (
    seq        BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT  NOT NULL,
    kind       TEXT    NOT NULL,
    user_id    BYTEA   CHECK (octet_length(user_id) = 16),
    session_id BYTEA   CHECK (octet_length(session_id) = 16),
    username   TEXT,
    ip         TEXT,
    detail     TEXT
);

-- JWT signing keys. `private` is PKCS#8 DER (or the raw HS256 secret), AES-256-GCM sealed when
-- `sealed` is true. `retires_at` NULL: the key has not been superseded. `kid` sorts by bytes
-- so that keys listed with equal `created_at` come out in the same order on every backend.
CREATE TABLE signing_keys (
    kid          TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    alg          TEXT    NOT NULL,
    private      BYTEA   NOT NULL,
    sealed       BOOLEAN NOT NULL,
    created_at   BIGINT  NOT NULL,
    activates_at BIGINT  NOT NULL,
    retires_at   BIGINT
);

CREATE INDEX signing_keys_by_created_at ON signing_keys (created_at, kid);

-- Server-wide secrets created on first start (the refresh chain key, the CSRF key), by name.
CREATE TABLE secrets (
    name  TEXT  NOT NULL PRIMARY KEY,
    value BYTEA NOT NULL
);
