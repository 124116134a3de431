-- API tokens (stored as their SHA-256, never in clear).
CREATE TABLE api_tokens (
    token_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    access_key_id TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
-- Retention finds finished top-level executions by age, and deletes joins by execution.
CREATE INDEX executions_finished ON executions (finished_at)
    WHERE parent_execution_id IS NULL AND finished_at IS NOT NULL;
CREATE INDEX joins_by_execution ON joins (execution_id);
