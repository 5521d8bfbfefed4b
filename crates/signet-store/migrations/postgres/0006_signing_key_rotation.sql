-- Scheduled signing-key rotation: a `next` key is published before it signs (`activates_at`).
ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_status_check;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_status_check
    CHECK (status IN ('next', 'active', 'retired'));
ALTER TABLE signing_keys ADD COLUMN activates_at BIGINT;
-- At most one key signs, and at most one waits to sign: two nodes cannot create competing keys.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (status) WHERE status = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (status) WHERE status = 'next';
