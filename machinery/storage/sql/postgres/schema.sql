-- The fresh schema: what every migration in migrations/ applied in order produces (a test checks).
-- A new migration changes this file too; migrate() applies it to an empty database.

-- Timestamps are epoch seconds (DOUBLE PRECISION), as the Storage interface passes them.
-- Documents users posted or services returned (definitions, inputs, outputs, branch state, history
-- details, work payloads) are JSON, which keeps their text as written: key order survives and a
-- "\u0000" in a service's reply does not fail the commit (JSONB rejects it). JSONB is for machinery's own
-- metadata that queries look into (a workflow's services).

CREATE TABLE services (
    service_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    body JSONB NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE workflows (
    workflow_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE workflow_versions (
    workflow_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    spec JSON NOT NULL,
    definition JSON NOT NULL,
    services JSONB NOT NULL,
    express BOOLEAN NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (workflow_id, version)
);

CREATE TABLE executions (
    execution_id TEXT PRIMARY KEY,
    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    workflow_id TEXT NOT NULL,
    workflow_name TEXT NOT NULL,
    workflow_version INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    input JSON NOT NULL,
    output JSON,
    error TEXT,
    cause TEXT,
    started_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    callback_url TEXT,
    express BOOLEAN NOT NULL DEFAULT FALSE,
    last_event_id BIGINT NOT NULL DEFAULT 0,
    -- the execution whose DISTRIBUTED Map started this one (one item of it)
    parent_execution_id TEXT,
    -- how often it was redriven, and when last
    redrive_count INTEGER NOT NULL DEFAULT 0,
    redrive_date DOUBLE PRECISION
);
CREATE INDEX executions_by_workflow ON executions (workflow_id, seq);
CREATE INDEX executions_by_status ON executions (status, seq);
CREATE INDEX executions_by_parent ON executions (parent_execution_id, seq);
CREATE INDEX executions_by_name ON executions (workflow_name, name, seq);

CREATE TABLE branches (
    branch_id TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL,
    join_id TEXT,
    idx INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    body JSON NOT NULL
);
CREATE INDEX branches_by_join ON branches (join_id, idx);
CREATE INDEX branches_by_execution ON branches (execution_id);

CREATE TABLE joins (
    join_id TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL,
    parent_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    total INTEGER NOT NULL,
    started INTEGER NOT NULL,
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    max_concurrency INTEGER NOT NULL,
    tolerated_count INTEGER NOT NULL,
    tolerated_pct DOUBLE PRECISION NOT NULL,
    closed BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE history (
    execution_id TEXT NOT NULL,
    event_id BIGINT NOT NULL,
    type TEXT NOT NULL,
    timestamp DOUBLE PRECISION NOT NULL,
    details JSON NOT NULL,
    PRIMARY KEY (execution_id, event_id)
);

CREATE TABLE work (
    work_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id TEXT NOT NULL,
    branch_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    due_at DOUBLE PRECISION NOT NULL,
    payload JSON,
    owner TEXT,
    lease_until DOUBLE PRECISION,
    fence BIGINT NOT NULL DEFAULT 0
);
-- Claims scan by due time; idle workers ask for the earliest unowned item.
CREATE INDEX work_by_due ON work (due_at);
CREATE INDEX work_unowned_by_due ON work (due_at) WHERE owner IS NULL;
CREATE INDEX work_by_owner ON work (owner) WHERE owner IS NOT NULL;
CREATE INDEX work_by_execution ON work (execution_id);
CREATE INDEX work_by_branch ON work (branch_id);

CREATE TABLE resources (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    body JSON NOT NULL,
    PRIMARY KEY (kind, key)
);

-- API tokens (their SHA-256 only).
CREATE TABLE api_tokens (
    token_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    access_key_id TEXT NOT NULL UNIQUE,
    created_at DOUBLE PRECISION NOT NULL
);
-- Retention finds finished top-level executions by age, and deletes joins by execution.
CREATE INDEX executions_finished ON executions (finished_at)
    WHERE parent_execution_id IS NULL AND finished_at IS NOT NULL;
CREATE INDEX joins_by_execution ON joins (execution_id);

-- Moves with every change to a service or a workflow (cached definitions are dropped when it moves).
CREATE TABLE definitions_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO definitions_generation (id, value) VALUES (1, 0);
