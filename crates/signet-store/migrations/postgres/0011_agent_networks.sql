-- The networks (IPv4 /24, IPv6 /64) each agent authenticated from, for the alert on an agent
-- authenticating from a network it has not used recently.
CREATE TABLE agent_networks (
    agent_id   TEXT NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    network    TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    PRIMARY KEY (agent_id, network)
);
