-- Named queries of the SQLite backend (placeholders :name). The PostgreSQL dialect defines the same names.

-- name: migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL);

-- name: migrations_applied
SELECT version FROM schema_migrations ORDER BY version;

-- name: migration_record
INSERT INTO schema_migrations (version, applied_at) VALUES (:version, :now);

-- name: service_by_ref
SELECT service_id, name, body, created_at, updated_at FROM services WHERE service_id = :ref OR name = :ref
LIMIT 1;

-- name: service_get
SELECT service_id, name, body, created_at, updated_at FROM services WHERE service_id = :ref OR name = :ref
LIMIT 1;

-- name: services_all
SELECT service_id, name, body, created_at, updated_at FROM services ORDER BY name;

-- name: service_insert
INSERT INTO services (service_id, name, body, created_at, updated_at)
VALUES (:service_id, :name, :body, :now, :now)
ON CONFLICT (name) DO NOTHING
RETURNING service_id, name, body, created_at, updated_at;

-- name: service_update
UPDATE services SET name = :name, body = :body, updated_at = :now WHERE service_id = :service_id
RETURNING service_id, name, body, created_at, updated_at;

-- name: service_delete
DELETE FROM services WHERE service_id = :service_id;

-- name: workflow_get
-- The latest version (:version NULL) or a given one, with the workflow's head.
SELECT w.workflow_id, w.name, w.updated_at, v.version, v.spec, v.definition, v.services, v.express,
       v.created_at
FROM workflows w JOIN workflow_versions v
  ON v.workflow_id = w.workflow_id AND v.version = COALESCE(:version, w.version)
WHERE w.workflow_id = :ref OR w.name = :ref
LIMIT 1;

-- name: workflows_all
SELECT w.workflow_id, w.name, w.updated_at, v.version, v.spec, v.definition, v.services, v.express,
       v.created_at
FROM workflows w JOIN workflow_versions v ON v.workflow_id = w.workflow_id AND v.version = w.version
ORDER BY w.name;

-- name: versions_all
SELECT w.workflow_id, w.name, w.updated_at, v.version, v.spec, v.definition, v.services, v.express,
       v.created_at
FROM workflows w JOIN workflow_versions v ON v.workflow_id = w.workflow_id
WHERE w.workflow_id = :workflow_id OR w.name = :workflow_id
ORDER BY v.version;

-- name: workflows_using
SELECT w.name
FROM workflows w JOIN workflow_versions v ON v.workflow_id = w.workflow_id AND v.version = w.version
WHERE EXISTS (SELECT 1 FROM json_each(v.services) WHERE json_each.value = :service)
ORDER BY w.name;

-- name: workflow_insert
INSERT INTO workflows (workflow_id, name, version, created_at, updated_at)
VALUES (:workflow_id, :name, 1, :now, :now)
ON CONFLICT (name) DO NOTHING
RETURNING workflow_id, name, version, created_at, updated_at;

-- name: workflow_bump
UPDATE workflows SET name = :name, version = version + 1, updated_at = :now
WHERE workflow_id = (SELECT workflow_id FROM workflows WHERE workflow_id = :ref OR name = :ref LIMIT 1)
RETURNING workflow_id, name, version, created_at, updated_at;

-- name: workflow_delete
DELETE FROM workflows WHERE workflow_id = :workflow_id;

-- name: version_insert
INSERT INTO workflow_versions (workflow_id, version, spec, definition, services, express, created_at)
VALUES (:workflow_id, :version, :spec, :definition, :services, :express, :now)
RETURNING version, spec, definition, services, express, created_at;

-- name: execution_insert
INSERT INTO executions (execution_id, workflow_id, workflow_name, workflow_version, name, status, input,
                        output, error, cause, started_at, finished_at, callback_url, express,
                        parent_execution_id)
VALUES (:execution_id, :workflow_id, :workflow_name, :workflow_version, :name, :status, :input,
        :output, :error, :cause, :started_at, :finished_at, :callback_url, :express, :parent_execution_id);

-- name: executions_running_children
SELECT execution_id FROM executions WHERE parent_execution_id = :execution_id AND status = 'RUNNING';

-- name: executions_active_in_join
-- The child executions among a join's children that still run (inline children share the join's own).
SELECT DISTINCT execution_id FROM branches
WHERE join_id = :join_id AND status = 'ACTIVE' AND execution_id != :execution_id;

-- name: execution_get
SELECT * FROM executions WHERE execution_id = :execution_id;

-- name: execution_finish
UPDATE executions SET status = :status, output = :output, error = :error, cause = :cause, finished_at = :now
WHERE execution_id = :execution_id AND status = 'RUNNING'
RETURNING callback_url;

-- name: execution_reserve_events
UPDATE executions SET last_event_id = last_event_id + :count WHERE execution_id = :execution_id
RETURNING last_event_id;

-- name: history_insert
INSERT INTO history (execution_id, event_id, type, timestamp, details)
VALUES (:execution_id, :event_id, :type, :timestamp, :details);

-- name: executions_count
SELECT workflow_id, status, COUNT(*) AS n FROM executions
WHERE parent_execution_id IS NULL GROUP BY workflow_id, status;

-- name: history_page
SELECT event_id, type, timestamp, details FROM history
WHERE execution_id = :execution_id AND event_id > :after ORDER BY event_id LIMIT :limit;

-- name: history_page_reverse
SELECT event_id, type, timestamp, details FROM history
WHERE execution_id = :execution_id AND event_id < :after ORDER BY event_id DESC LIMIT :limit;

-- name: branch_upsert
INSERT INTO branches (branch_id, execution_id, join_id, idx, status, body)
VALUES (:branch_id, :execution_id, :join_id, :idx, :status, :body)
ON CONFLICT (branch_id) DO UPDATE SET status = excluded.status, body = excluded.body;

-- name: branch_get
SELECT status, body FROM branches WHERE branch_id = :branch_id;

-- name: branch_execution
SELECT execution_id FROM branches WHERE branch_id = :branch_id;

-- name: branches_of_join
SELECT status, body FROM branches WHERE join_id = :join_id ORDER BY idx;

-- name: branches_cancel_join
UPDATE branches SET status = 'CANCELLED' WHERE join_id = :join_id AND status = 'ACTIVE';

-- name: branches_cancel_execution
UPDATE branches SET status = 'CANCELLED' WHERE execution_id = :execution_id AND status = 'ACTIVE';

-- name: join_insert
INSERT INTO joins (join_id, execution_id, parent_id, kind, total, started, max_concurrency, tolerated_count,
                   tolerated_pct)
VALUES (:join_id, :execution_id, :parent_id, :kind, :total, :started, :max_concurrency, :tolerated_count,
        :tolerated_pct);

-- name: join_get
SELECT * FROM joins WHERE join_id = :join_id;

-- name: join_update
UPDATE joins SET started = :started, succeeded = :succeeded, failed = :failed, closed = :closed
WHERE join_id = :join_id;

-- name: work_insert
INSERT INTO work (execution_id, branch_id, kind, due_at, payload) VALUES (:execution_id, :branch_id, :kind, :due_at, :payload);

-- name: work_insert_claimed
INSERT INTO work (execution_id, branch_id, kind, due_at, payload, owner, lease_until, fence)
VALUES (:execution_id, :branch_id, :kind, :due_at, :payload, :owner, :lease_until, 1)
RETURNING work_id;

-- name: work_claim
UPDATE work SET owner = :owner, lease_until = :lease_until, fence = fence + 1
WHERE work_id IN (
    SELECT work_id FROM work WHERE due_at <= :now AND (owner IS NULL OR lease_until < :now)
    ORDER BY due_at LIMIT :limit
)
RETURNING work_id, execution_id, branch_id, kind, due_at, payload, owner, fence;

-- name: work_consume
DELETE FROM work WHERE work_id = :work_id AND fence = :fence AND owner = :owner;

-- name: work_reschedule
UPDATE work SET due_at = :due_at, owner = NULL, lease_until = NULL
WHERE work_id = :work_id AND fence = :fence AND owner = :owner;

-- name: work_reschedule_payload
UPDATE work SET due_at = :due_at, owner = NULL, lease_until = NULL, payload = :payload
WHERE work_id = :work_id AND fence = :fence AND owner = :owner;

-- name: work_extend_heartbeat
UPDATE work SET due_at = :due_at
WHERE execution_id = :execution_id AND branch_id = :branch_id AND kind = 'token' AND owner IS NULL
  AND json_extract(payload, '$.error') = :error AND json_extract(payload, '$.token') = :token;

-- name: work_delete_join_children
DELETE FROM work WHERE branch_id IN (SELECT branch_id FROM branches WHERE join_id = :join_id);

-- name: work_delete_execution
DELETE FROM work WHERE execution_id = :execution_id AND kind != 'webhook';

-- name: work_renew
UPDATE work SET lease_until = :until
WHERE work_id IN (SELECT value FROM json_each(:work_ids)) AND owner = :owner;

-- name: work_release_owner
UPDATE work SET owner = NULL, lease_until = NULL WHERE owner = :owner;

-- name: work_release_all
UPDATE work SET owner = NULL, lease_until = NULL WHERE owner IS NOT NULL;

-- name: work_next_due
SELECT MIN(due_at) AS due_at FROM work WHERE owner IS NULL;

-- API tokens, retention ------------------------------------------------------------------------

-- name: api_token_insert
INSERT INTO api_tokens (token_id, name, scope, token_hash, access_key_id, created_at)
VALUES (:token_id, :name, :scope, :token_hash, :access_key_id, :created_at)
ON CONFLICT (name) DO NOTHING;

-- name: api_token_by_token_id
SELECT token_id, name, scope, token_hash, access_key_id, created_at FROM api_tokens WHERE token_id = :value;

-- name: api_token_by_name
SELECT token_id, name, scope, token_hash, access_key_id, created_at FROM api_tokens WHERE name = :value;

-- name: api_token_by_token_hash
SELECT token_id, name, scope, token_hash, access_key_id, created_at FROM api_tokens WHERE token_hash = :value;

-- name: api_token_by_access_key_id
SELECT token_id, name, scope, token_hash, access_key_id, created_at FROM api_tokens
WHERE access_key_id = :value;

-- name: api_tokens_all
SELECT token_id, name, scope, token_hash, access_key_id, created_at FROM api_tokens ORDER BY created_at, name;

-- name: api_token_delete
DELETE FROM api_tokens WHERE token_id = :token_id;

-- name: purge_roots
SELECT execution_id FROM executions
WHERE parent_execution_id IS NULL AND finished_at IS NOT NULL AND finished_at < :before
ORDER BY finished_at
LIMIT :limit;

-- name: purge_children
SELECT execution_id FROM executions WHERE parent_execution_id IN (SELECT value FROM json_each(:ids));

-- name: purge_history
DELETE FROM history WHERE execution_id IN (SELECT value FROM json_each(:ids));

-- name: purge_branches
DELETE FROM branches WHERE execution_id IN (SELECT value FROM json_each(:ids));

-- name: purge_joins
DELETE FROM joins WHERE execution_id IN (SELECT value FROM json_each(:ids));

-- name: purge_work
DELETE FROM work WHERE execution_id IN (SELECT value FROM json_each(:ids));

-- name: purge_executions
DELETE FROM executions WHERE execution_id IN (SELECT value FROM json_each(:ids));

-- name: execution_by_name
SELECT * FROM executions WHERE workflow_name = :workflow_name AND name = :name ORDER BY seq DESC LIMIT 1;

-- name: resource_put
INSERT INTO resources (kind, key, body) VALUES (:kind, :key, :body)
ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body;

-- name: resource_insert
INSERT INTO resources (kind, key, body) VALUES (:kind, :key, :body) ON CONFLICT (kind, key) DO NOTHING;

-- name: resource_get
SELECT key, body FROM resources WHERE kind = :kind AND key = :key;

-- name: resource_list
SELECT key, body FROM resources WHERE kind = :kind AND substr(key, 1, length(:prefix)) = :prefix ORDER BY key;

-- name: resource_delete
DELETE FROM resources WHERE kind = :kind AND key = :key;

-- name: resource_take
DELETE FROM resources WHERE kind = :kind AND key = (
    SELECT key FROM resources WHERE kind = :kind AND substr(key, 1, length(:prefix)) = :prefix ORDER BY key LIMIT 1
) RETURNING key, body;

-- name: execution_reopen
UPDATE executions SET status = 'RUNNING', output = NULL, error = NULL, cause = NULL, finished_at = NULL,
    redrive_count = redrive_count + 1, redrive_date = :now
WHERE execution_id = :execution_id AND status = :status;

-- name: join_update_limits
UPDATE joins SET max_concurrency = :max_concurrency, tolerated_count = :tolerated_count,
    tolerated_pct = :tolerated_pct, started = :started
WHERE join_id = :join_id;

-- name: generation_get
SELECT value FROM definitions_generation WHERE id = 1;

-- name: generation_bump
UPDATE definitions_generation SET value = value + 1 WHERE id = 1;

-- name: savepoint
-- One commit of a group commit: rolled back alone when its fence was lost.
SAVEPOINT group_commit;

-- name: savepoint_rollback
ROLLBACK TO SAVEPOINT group_commit;

-- name: savepoint_release
RELEASE SAVEPOINT group_commit;

-- name: executions_finished_among
SELECT execution_id FROM executions
WHERE execution_id IN (SELECT value FROM json_each(:ids)) AND status != 'RUNNING';

-- name: work_counts
-- For /metrics: what the claim query would take now (due), what waits for its time (scheduled), what
-- live leases hold (claimed). One pass over the work table, which holds only pending work.
SELECT
    COALESCE(SUM(CASE WHEN owner IS NOT NULL AND lease_until >= :now THEN 1 ELSE 0 END), 0) AS claimed,
    COALESCE(SUM(CASE WHEN (owner IS NULL OR lease_until < :now) AND due_at <= :now THEN 1 ELSE 0 END), 0) AS due,
    COALESCE(SUM(CASE WHEN (owner IS NULL OR lease_until < :now) AND due_at > :now THEN 1 ELSE 0 END), 0)
        AS scheduled
FROM work;

-- name: executions_running_by_workflow
SELECT workflow_name, COUNT(*) AS running FROM executions WHERE status = :status GROUP BY workflow_name;

-- triggers (schedules and event sources) ---------------------------------------------------------------

-- name: execution_insert_new
-- A trigger's execution id derives from its tick or message: a repeated start inserts nothing.
INSERT INTO executions (execution_id, workflow_id, workflow_name, workflow_version, name, status, input,
                        output, error, cause, started_at, finished_at, callback_url, express,
                        parent_execution_id)
VALUES (:execution_id, :workflow_id, :workflow_name, :workflow_version, :name, :status, :input,
        :output, :error, :cause, :started_at, :finished_at, :callback_url, :express, :parent_execution_id)
ON CONFLICT (execution_id) DO NOTHING;

-- name: work_of_execution
SELECT work_id, execution_id, branch_id, kind, due_at, payload, owner, fence FROM work
WHERE execution_id = :execution_id ORDER BY due_at, work_id;

-- name: work_delete_all_of_execution
DELETE FROM work WHERE execution_id = :execution_id;
