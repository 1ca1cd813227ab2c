-- Revocations tessera acknowledged, kept where a Redis restart or fail-over cannot undo them.
-- Redis holds sessions and the denylist; a Redis that comes back without its last writes
-- (restored from an older snapshot, a replica that had not caught up) would bring a logged-out
-- session back. Every instance that sees Redis restart replays these rows into it before it
-- trusts Redis again.
--
-- `ident` names what was ended, so revoking the same thing twice keeps one row (the later
-- `until` wins):
--   kind 'session'            user_id + target (session id): the session record was deleted
--   kind 'deny_session'       target (session id): a denylist entry for the session's tokens
--   kind 'deny_token'         target (token id): a denylist entry for one access token
--   kind 'deny_issued_before' user_id + cutoff: every token of the user issued at or before
-- `until` (unix seconds) is the last moment what was ended could still be used — when the
-- session's Redis key was to expire (its idle end, never after its absolute end; no older copy
-- of the key expires later), the access tokens' expiry; the row is pruned after it.
CREATE TABLE revocations (
    ident   TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    kind    TEXT    NOT NULL CHECK (kind IN ('session', 'deny_session', 'deny_token', 'deny_issued_before')),
    user_id BYTEA   CHECK (octet_length(user_id) = 16),
    target  BYTEA   CHECK (octet_length(target) = 16),
    cutoff  BIGINT,
    until   BIGINT  NOT NULL
);

CREATE INDEX revocations_by_until ON revocations (until);
