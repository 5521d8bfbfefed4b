-- SQLite gains the `audit_chain_head` table PostgreSQL has had since 0009; nothing to do here.
SELECT 1;
