-- One denylist row per revocation target (#13): a session or a token is denied once and for
-- all, and the same cut-off for a user covers the same tokens, so repeating a revocation must
-- not add rows (an attacker repeating `POST /v1/revoke` grew the table without bound).
-- Existing duplicates collapse into their oldest row, keeping the latest expiry.
UPDATE denylist SET expires_at = (
    SELECT MAX(d.expires_at) FROM denylist AS d
    WHERE d.kind = denylist.kind AND d.id = denylist.id
      AND IFNULL(d.issued_before, 0) = IFNULL(denylist.issued_before, 0)
);
DELETE FROM denylist WHERE seq NOT IN (
    SELECT MIN(seq) FROM denylist GROUP BY kind, id, IFNULL(issued_before, 0)
);
CREATE UNIQUE INDEX denylist_one_per_target ON denylist (kind, id, IFNULL(issued_before, 0));
