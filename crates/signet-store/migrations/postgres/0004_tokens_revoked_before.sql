-- Revoking every token of an agent issued up to a moment.
ALTER TABLE agents ADD COLUMN tokens_revoked_before BIGINT;
