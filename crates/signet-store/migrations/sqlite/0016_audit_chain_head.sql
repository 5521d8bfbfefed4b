-- The chain's head, as PostgreSQL has had it since 0009: the group-commit writer and admin changes
-- (which write their record in their own transaction) number records after `last_id` and store
-- the new head in the same transaction. Records deleted from the end of the log leave the head
-- pointing past them, so the next record's hash gives the deletion away.
CREATE TABLE audit_chain_head (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    last_id INTEGER NOT NULL,
    hash    BLOB NOT NULL
);
INSERT INTO audit_chain_head (id, last_id, hash)
SELECT 1,
       MAX(COALESCE((SELECT id FROM audit_events ORDER BY id DESC LIMIT 1),
                    (SELECT last_id FROM audit_checkpoints ORDER BY last_id DESC LIMIT 1), 0),
           COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'audit_events'), 0)),
       CASE WHEN EXISTS (SELECT 1 FROM audit_events)
            THEN COALESCE((SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1), zeroblob(32))
            ELSE COALESCE((SELECT hash FROM audit_checkpoints ORDER BY last_id DESC LIMIT 1), zeroblob(32))
       END;
