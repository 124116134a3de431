CREATE TABLE services (
    service_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

CREATE TABLE workflows (
    workflow_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

CREATE TABLE workflow_versions (
    workflow_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    spec TEXT NOT NULL,
    definition TEXT NOT NULL,
    services TEXT NOT NULL,
    express INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (workflow_id, version)
);

CREATE TABLE executions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL UNIQUE,
    workflow_id TEXT NOT NULL,
    workflow_name TEXT NOT NULL,
    workflow_version INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT,
    error TEXT,
    cause TEXT,
    started_at REAL NOT NULL,
    finished_at REAL,
    callback_url TEXT,
    express INTEGER NOT NULL DEFAULT 0,
    last_event_id INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX executions_by_workflow ON executions (workflow_id, seq);
CREATE INDEX executions_by_status ON executions (status, seq);

CREATE TABLE branches (
    branch_id TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL,
    join_id TEXT,
    idx INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    body TEXT NOT NULL
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
    tolerated_pct REAL NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE history (
    execution_id TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    timestamp REAL NOT NULL,
    details TEXT NOT NULL,
    PRIMARY KEY (execution_id, event_id)
);

CREATE TABLE work (
    work_id INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    branch_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    due_at REAL NOT NULL,
    payload TEXT,
    owner TEXT,
    lease_until REAL,
    fence INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX work_by_due ON work (due_at);
CREATE INDEX work_by_execution ON work (execution_id);
