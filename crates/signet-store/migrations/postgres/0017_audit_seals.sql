-- Seals under the audit key for what verification trusts besides the records themselves: each
-- retention checkpoint (`mac`, so that a checkpoint written into the database by hand cannot
-- hide the records before it), and where the log may still hold records from before the chain
-- was keyed (`legacy_before`: ids below it may be unkeyed or unhashed; nothing written from
-- now on). The migration runner computes the MACs in this migration's transaction.
ALTER TABLE audit_checkpoints ADD COLUMN mac BYTEA;
ALTER TABLE audit_chain_head ADD COLUMN legacy_before BIGINT;
ALTER TABLE audit_chain_head ADD COLUMN legacy_mac BYTEA;
UPDATE audit_chain_head SET legacy_before = last_id + 1 WHERE id = 1;
