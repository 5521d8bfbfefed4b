-- The HTTP request behind each audit record, also in the server's logs and the X-Request-Id
-- response header.
ALTER TABLE audit_events ADD COLUMN request_id TEXT;
CREATE INDEX audit_events_request_id ON audit_events (request_id) WHERE request_id IS NOT NULL;
