-- A session's creation and its refresh family's last rotation in unix milliseconds (they were
-- seconds): with a zero `refresh.reuse_grace` a replay in the same second as the rotation was
-- taken for a retry, and `session.max_per_user` picked a random one among the sessions created
-- within a second. Every other instant stays in seconds.
UPDATE sessions
SET created_at = created_at * 1000,
    refresh_rotated_at = refresh_rotated_at * 1000;
