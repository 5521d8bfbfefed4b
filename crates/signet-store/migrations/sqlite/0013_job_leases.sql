-- Scheduled jobs run on one node of a cluster at a time: a node runs a job only while it holds
-- the job's lease, renewed at each run; when the holder stops, the lease expires and another
-- node takes it over.
CREATE TABLE job_leases (
    job        TEXT PRIMARY KEY NOT NULL,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
