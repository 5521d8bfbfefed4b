-- Alerts raised by anomaly detection. While an alert is open, the same rule and subject count up
-- on it instead of opening another one.
CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    rule            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    agent_id        TEXT,
    source          TEXT,
    detail          TEXT,
    count           INTEGER NOT NULL,
    first_at        INTEGER NOT NULL,
    last_at         INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('open', 'acknowledged')),
    acknowledged_by TEXT,
    acknowledged_at INTEGER
);
CREATE UNIQUE INDEX alerts_open ON alerts (rule, subject) WHERE status = 'open';

-- Every attempt to deliver an alert to the webhook.
CREATE TABLE alert_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id    INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    ok          INTEGER NOT NULL,
    status_code INTEGER,
    error       TEXT
);
CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id);
