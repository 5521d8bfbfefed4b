-- Where a private_key_jwt agent publishes its keys.
ALTER TABLE agents ADD COLUMN jwks_uri TEXT;
