-- Named queries of the PostgreSQL backend (psycopg placeholders: %(name)s).

-- name: migrate_lock
-- Held until the migrating transaction ends, so concurrent starts apply each migration once.
SELECT pg_advisory_xact_lock(hashtext('machinery.migrate'));

-- name: migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    applied_at DOUBLE PRECISION NOT NULL
);

-- name: migrations_applied
SELECT version FROM schema_migrations ORDER BY version;

-- name: migration_record
INSERT INTO schema_migrations (version, applied_at) VALUES (%(version)s, %(now)s);

-- name: service_by_ref
SELECT service_id, name, body, created_at, updated_at FROM services
WHERE service_id = %(ref)s OR name = %(ref)s
LIMIT 1
FOR UPDATE;

-- name: service_get
SELECT service_id, name, body, created_at, updated_at FROM services
WHERE service_id = %(ref)s OR name = %(ref)s
LIMIT 1;

-- name: services_all
SELECT service_id, name, body, created_at, updated_at FROM services ORDER BY name;

-- name: service_insert
INSERT INTO services (service_id, name, body, created_at, updated_at)
VALUES (%(service_id)s, %(name)s, %(body)s, %(now)s, %(now)s)
ON CONFLICT (name) DO NOTHING
RETURNING service_id, name, body, created_at, updated_at;

-- name: service_update
UPDATE services SET name = %(name)s, body = %(body)s, updated_at = %(now)s WHERE service_id = %(service_id)s
RETURNING service_id, name, body, created_at, updated_at;

-- name: service_delete
DELETE FROM services WHERE service_id = %(service_id)s;

-- name: workflow_get
-- The latest version (version NULL) or a given one, with the workflow's head.
SELECT w.workflow_id, w.name, w.updated_at, v.version, v.spec, v.definition, v.services, v.express,
       v.created_at
FROM workflows w JOIN workflow_versions v
  ON v.workflow_id = w.workflow_id AND v.version = COALESCE(%(version)s::integer, w.version)
WHERE w.workflow_id = %(ref)s OR w.name = %(ref)s
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
WHERE w.workflow_id = %(workflow_id)s OR w.name = %(workflow_id)s
ORDER BY v.version;

-- name: workflows_using
SELECT w.name
FROM workflows w JOIN workflow_versions v ON v.workflow_id = w.workflow_id AND v.version = w.version
WHERE v.services ? %(service)s
ORDER BY w.name;

-- name: workflow_insert
INSERT INTO workflows (workflow_id, name, version, created_at, updated_at)
VALUES (%(workflow_id)s, %(name)s, 1, %(now)s, %(now)s)
ON CONFLICT (name) DO NOTHING
RETURNING workflow_id, name, version, created_at, updated_at;

-- name: workflow_bump
-- The row lock this takes orders concurrent saves of one workflow: each gets the next version.
UPDATE workflows SET name = %(name)s, version = version + 1, updated_at = %(now)s
WHERE workflow_id = (
    SELECT workflow_id FROM workflows WHERE workflow_id = %(ref)s OR name = %(ref)s LIMIT 1
)
RETURNING workflow_id, name, version, created_at, updated_at;

-- name: workflow_delete
DELETE FROM workflows WHERE workflow_id = %(workflow_id)s;

-- name: version_insert
INSERT INTO workflow_versions (workflow_id, version, spec, definition, services, express, created_at)
VALUES (%(workflow_id)s, %(version)s, %(spec)s, %(definition)s, %(services)s, %(express)s, %(now)s)
RETURNING version, spec, definition, services, express, created_at;

-- name: execution_insert
INSERT INTO executions (execution_id, workflow_id, workflow_name, workflow_version, name, status, input,
                        output, error, cause, started_at, finished_at, callback_url, express,
                        parent_execution_id)
VALUES (%(execution_id)s, %(workflow_id)s, %(workflow_name)s, %(workflow_version)s, %(name)s, %(status)s,
        %(input)s, %(output)s, %(error)s, %(cause)s, %(started_at)s, %(finished_at)s, %(callback_url)s,
        %(express)s, %(parent_execution_id)s);

-- name: executions_running_children
SELECT execution_id FROM executions
WHERE parent_execution_id = %(execution_id)s AND status = 'RUNNING'
ORDER BY execution_id;

-- name: executions_active_in_join
-- The child executions among a join's children that still run (inline children share the join's own).
SELECT DISTINCT execution_id FROM branches
WHERE join_id = %(join_id)s AND status = 'ACTIVE' AND execution_id != %(execution_id)s
ORDER BY execution_id;

-- name: execution_get
SELECT * FROM executions WHERE execution_id = %(execution_id)s;

-- name: execution_lock
-- Taken first by every transition of an execution: its commits (and the joins of its children)
-- serialise on this row, so they never wait on each other's work or branch rows in opposite orders.
SELECT callback_url FROM executions WHERE execution_id = %(execution_id)s FOR NO KEY UPDATE;

-- name: execution_finish
UPDATE executions
SET status = %(status)s, output = %(output)s, error = %(error)s, cause = %(cause)s, finished_at = %(now)s
WHERE execution_id = %(execution_id)s AND status = 'RUNNING'
RETURNING callback_url;

-- name: execution_reserve_events
UPDATE executions SET last_event_id = last_event_id + %(count)s WHERE execution_id = %(execution_id)s
RETURNING last_event_id;

-- name: history_insert
INSERT INTO history (execution_id, event_id, type, timestamp, details)
VALUES (%(execution_id)s, %(event_id)s, %(type)s, %(timestamp)s, %(details)s);

-- name: history_append
-- Reserves the events' ids on the execution's row and inserts them, in one round trip. Updating the row
-- locks it: a transition that has history appends it first, in place of execution_lock. ``events`` is one
-- JSON array of ``[type, timestamp, details]`` (``json``: ``->`` keeps each details' text as written).
WITH reserved AS (
    UPDATE executions SET last_event_id = last_event_id + %(count)s
    WHERE execution_id = %(execution_id)s
    RETURNING last_event_id - %(count)s AS before
)
INSERT INTO history (execution_id, event_id, type, timestamp, details)
SELECT %(execution_id)s, reserved.before + event.n, event.value ->> 0, (event.value ->> 1)::float8,
       event.value -> 2
FROM reserved, json_array_elements(%(events)s::json) WITH ORDINALITY AS event(value, n);

-- name: step_apply
-- A plain step in one round trip: its history appended (which locks the execution's row first: the
-- other parts wait on ``reserved``), its work item consumed if its fence and owner still match, its
-- branch written and at most one next item inserted (claimed when ``next_owner`` is set). The counts tell
-- the caller whether the execution exists and the item was still its own; when not, it raises and the
-- transaction (or the group's savepoint) is rolled back, undoing the other parts.
WITH reserved AS (
    UPDATE executions SET last_event_id = last_event_id + %(count)s
    WHERE execution_id = %(execution_id)s
    RETURNING last_event_id - %(count)s AS before
), appended AS (
    INSERT INTO history (execution_id, event_id, type, timestamp, details)
    SELECT %(execution_id)s, reserved.before + event.n, event.value ->> 0, (event.value ->> 1)::float8,
           event.value -> 2
    FROM reserved, json_array_elements(%(events)s::json) WITH ORDINALITY AS event(value, n)
), consumed AS (
    DELETE FROM work
    WHERE work_id = %(work_id)s AND fence = %(fence)s AND owner = %(owner)s AND EXISTS (SELECT FROM reserved)
    RETURNING work_id
), written AS (
    INSERT INTO branches (branch_id, execution_id, join_id, idx, status, body)
    SELECT %(branch_id)s, %(execution_id)s, %(join_id)s, %(idx)s, %(status)s, %(body)s
    FROM reserved
    ON CONFLICT (branch_id) DO UPDATE SET status = excluded.status, body = excluded.body
), next AS (
    INSERT INTO work (execution_id, branch_id, kind, due_at, payload, owner, lease_until, fence)
    SELECT %(execution_id)s, %(next_branch_id)s, %(next_kind)s, %(next_due_at)s, %(next_payload)s,
           %(next_owner)s, %(next_lease_until)s, CASE WHEN %(next_owner)s::text IS NULL THEN 0 ELSE 1 END
    FROM reserved WHERE %(has_next)s
    RETURNING work_id
)
SELECT (SELECT COUNT(*) FROM reserved) AS reserved, (SELECT COUNT(*) FROM consumed) AS consumed,
       (SELECT work_id FROM next) AS next_work_id;

-- name: step_finish
-- A plain last step in one round trip: as step_apply, and the execution's end written when it still runs
-- (``prior`` locks its row first and tells), its other pending work deleted (not the consumed item: one
-- statement must not delete a row twice) and whether it has running child executions to abort.
WITH prior AS (
    SELECT status = 'RUNNING' AS running FROM executions WHERE execution_id = %(execution_id)s FOR UPDATE
), reserved AS (
    UPDATE executions e
    SET last_event_id = e.last_event_id + %(count)s,
        status = CASE WHEN prior.running THEN %(final_status)s ELSE e.status END,
        output = CASE WHEN prior.running THEN %(output)s ELSE e.output END,
        error = CASE WHEN prior.running THEN %(error)s ELSE e.error END,
        cause = CASE WHEN prior.running THEN %(cause)s ELSE e.cause END,
        finished_at = CASE WHEN prior.running THEN %(now)s ELSE e.finished_at END
    FROM prior
    WHERE e.execution_id = %(execution_id)s
    RETURNING e.last_event_id - %(count)s AS before, prior.running AS finished, e.callback_url
), appended AS (
    INSERT INTO history (execution_id, event_id, type, timestamp, details)
    SELECT %(execution_id)s, reserved.before + event.n, event.value ->> 0, (event.value ->> 1)::float8,
           event.value -> 2
    FROM reserved, json_array_elements(%(events)s::json) WITH ORDINALITY AS event(value, n)
), consumed AS (
    DELETE FROM work
    WHERE work_id = %(work_id)s AND fence = %(fence)s AND owner = %(owner)s AND EXISTS (SELECT FROM reserved)
    RETURNING work_id
), written AS (
    INSERT INTO branches (branch_id, execution_id, join_id, idx, status, body)
    SELECT %(branch_id)s, %(execution_id)s, %(join_id)s, %(idx)s, %(status)s, %(body)s
    FROM reserved
    ON CONFLICT (branch_id) DO UPDATE SET status = excluded.status, body = excluded.body
), cleared AS (
    DELETE FROM work
    WHERE execution_id = %(execution_id)s AND kind != 'webhook' AND work_id != %(work_id)s
      AND (SELECT finished FROM reserved)
)
SELECT (SELECT COUNT(*) FROM reserved) AS reserved, (SELECT COUNT(*) FROM consumed) AS consumed,
       (SELECT finished FROM reserved) AS finished, (SELECT callback_url FROM reserved) AS callback_url,
       EXISTS (SELECT FROM executions WHERE parent_execution_id = %(execution_id)s AND status = 'RUNNING')
           AS running_children;

-- name: execution_create_claimed
-- A new execution's row, its root branch and its first work item claimed by the worker that will run
-- it, in one round trip.
WITH created AS (
    INSERT INTO executions (execution_id, workflow_id, workflow_name, workflow_version, name, status, input,
                            output, error, cause, started_at, finished_at, callback_url, express,
                            parent_execution_id)
    VALUES (%(execution_id)s, %(workflow_id)s, %(workflow_name)s, %(workflow_version)s, %(name)s, %(status)s,
            %(input)s, %(output)s, %(error)s, %(cause)s, %(started_at)s, %(finished_at)s, %(callback_url)s,
            %(express)s, %(parent_execution_id)s)
    RETURNING execution_id
), root AS (
    INSERT INTO branches (branch_id, execution_id, join_id, idx, status, body)
    SELECT %(root_branch_id)s, execution_id, NULL, %(root_idx)s, %(root_status)s, %(root_body)s FROM created
)
INSERT INTO work (execution_id, branch_id, kind, due_at, payload, owner, lease_until, fence)
SELECT execution_id, %(work_branch_id)s, %(work_kind)s, %(work_due_at)s, %(work_payload)s, %(owner)s,
       %(lease_until)s, 1
FROM created
RETURNING work_id;

-- name: execution_insert_finished
-- An express execution's final row and its history, in one round trip.
WITH created AS (
    INSERT INTO executions (execution_id, workflow_id, workflow_name, workflow_version, name, status, input,
                            output, error, cause, started_at, finished_at, callback_url, express,
                            parent_execution_id, last_event_id)
    VALUES (%(execution_id)s, %(workflow_id)s, %(workflow_name)s, %(workflow_version)s, %(name)s, %(status)s,
            %(input)s, %(output)s, %(error)s, %(cause)s, %(started_at)s, %(finished_at)s, %(callback_url)s,
            %(express)s, %(parent_execution_id)s, %(count)s)
    RETURNING execution_id
)
INSERT INTO history (execution_id, event_id, type, timestamp, details)
SELECT created.execution_id, event.n, event.value ->> 0, (event.value ->> 1)::float8, event.value -> 2
FROM created, json_array_elements(%(events)s::json) WITH ORDINALITY AS event(value, n);

-- name: executions_count
SELECT workflow_id, status, COUNT(*) AS n FROM executions
WHERE parent_execution_id IS NULL GROUP BY workflow_id, status;

-- name: history_page
SELECT event_id, type, timestamp, details FROM history
WHERE execution_id = %(execution_id)s AND event_id > %(after)s ORDER BY event_id LIMIT %(limit)s;

-- name: history_page_reverse
SELECT event_id, type, timestamp, details FROM history
WHERE execution_id = %(execution_id)s AND event_id < %(after)s ORDER BY event_id DESC LIMIT %(limit)s;

-- name: branch_upsert
INSERT INTO branches (branch_id, execution_id, join_id, idx, status, body)
VALUES (%(branch_id)s, %(execution_id)s, %(join_id)s, %(idx)s, %(status)s, %(body)s)
ON CONFLICT (branch_id) DO UPDATE SET status = excluded.status, body = excluded.body;

-- name: branch_get
SELECT status, body FROM branches WHERE branch_id = %(branch_id)s;

-- name: branch_execution
SELECT execution_id FROM branches WHERE branch_id = %(branch_id)s;

-- name: branches_of_join
SELECT status, body FROM branches WHERE join_id = %(join_id)s ORDER BY idx;

-- name: branches_cancel_join
UPDATE branches SET status = 'CANCELLED' WHERE join_id = %(join_id)s AND status = 'ACTIVE';

-- name: branches_cancel_execution
UPDATE branches SET status = 'CANCELLED' WHERE execution_id = %(execution_id)s AND status = 'ACTIVE';

-- name: join_insert
INSERT INTO joins (join_id, execution_id, parent_id, kind, total, started, max_concurrency, tolerated_count,
                   tolerated_pct)
VALUES (%(join_id)s, %(execution_id)s, %(parent_id)s, %(kind)s, %(total)s, %(started)s, %(max_concurrency)s,
        %(tolerated_count)s, %(tolerated_pct)s);

-- name: join_lock
-- Children of one join finish on different workers: each accounts under this row lock.
SELECT * FROM joins WHERE join_id = %(join_id)s FOR UPDATE;

-- name: join_update
UPDATE joins SET started = %(started)s, succeeded = %(succeeded)s, failed = %(failed)s, closed = %(closed)s
WHERE join_id = %(join_id)s;

-- name: work_insert
INSERT INTO work (execution_id, branch_id, kind, due_at, payload)
VALUES (%(execution_id)s, %(branch_id)s, %(kind)s, %(due_at)s, %(payload)s);

-- name: work_insert_claimed
INSERT INTO work (execution_id, branch_id, kind, due_at, payload, owner, lease_until, fence)
VALUES (%(execution_id)s, %(branch_id)s, %(kind)s, %(due_at)s, %(payload)s, %(owner)s, %(lease_until)s, 1)
RETURNING work_id;

-- name: work_notify
-- Delivered at commit, to every LISTENing worker; the payload is the earliest new due time.
SELECT pg_notify('machinery_work', %(due_at)s);

-- name: work_listen
LISTEN machinery_work;

-- name: work_claim
-- SKIP LOCKED: concurrent claimers pass over each other's rows instead of waiting or double-claiming.
WITH claimable AS (
    SELECT work_id FROM work
    WHERE due_at <= %(now)s AND (owner IS NULL OR lease_until < %(now)s)
    ORDER BY due_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE work SET owner = %(owner)s, lease_until = %(lease_until)s, fence = work.fence + 1
FROM claimable
WHERE work.work_id = claimable.work_id
RETURNING work.work_id, work.execution_id, work.branch_id, work.kind, work.due_at, work.payload, work.owner,
          work.fence;

-- name: work_consume
DELETE FROM work WHERE work_id = %(work_id)s AND fence = %(fence)s AND owner = %(owner)s;

-- name: work_reschedule
UPDATE work SET due_at = %(due_at)s, owner = NULL, lease_until = NULL
WHERE work_id = %(work_id)s AND fence = %(fence)s AND owner = %(owner)s;

-- name: work_reschedule_payload
UPDATE work SET due_at = %(due_at)s, owner = NULL, lease_until = NULL, payload = %(payload)s
WHERE work_id = %(work_id)s AND fence = %(fence)s AND owner = %(owner)s;

-- name: work_extend_heartbeat
UPDATE work SET due_at = %(due_at)s
WHERE execution_id = %(execution_id)s AND branch_id = %(branch_id)s AND kind = 'token' AND owner IS NULL
  AND payload->>'error' = %(error)s AND payload->>'token' = %(token)s;

-- name: work_delete_join_children
DELETE FROM work WHERE branch_id IN (SELECT branch_id FROM branches WHERE join_id = %(join_id)s);

-- name: work_delete_execution
DELETE FROM work WHERE execution_id = %(execution_id)s AND kind != 'webhook';

-- name: work_renew
UPDATE work SET lease_until = %(until)s WHERE work_id = ANY(%(work_ids)s) AND owner = %(owner)s;

-- name: work_release_owner
UPDATE work SET owner = NULL, lease_until = NULL WHERE owner = %(owner)s;

-- name: work_release_all
UPDATE work SET owner = NULL, lease_until = NULL WHERE owner IS NOT NULL;

-- name: work_next_due
SELECT MIN(due_at) AS due_at FROM work WHERE owner IS NULL;

-- API tokens, retention ------------------------------------------------------------------------

-- name: api_token_insert
INSERT INTO api_tokens (token_id, name, scope, token_hash, access_key_id, created_at)
VALUES (%(token_id)s, %(name)s, %(scope)s, %(token_hash)s, %(access_key_id)s, %(created_at)s)
ON CONFLICT (name) DO NOTHING;

-- name: api_token_by_token_id
SELECT token_id, name, scope, token_hash, access_key_id, created_at FROM api_tokens WHERE token_id = %(value)s;

-- name: api_token_by_name
SELECT token_id, name, scope, token_hash, access_key_id, created_at FROM api_tokens WHERE name = %(value)s;

-- name: api_token_by_token_hash
SELECT token_id, name, scope, token_hash, access_key_id, created_at FROM api_tokens WHERE token_hash = %(value)s;

-- name: api_token_by_access_key_id
SELECT token_id, name, scope, token_hash, access_key_id, created_at FROM api_tokens
WHERE access_key_id = %(value)s;

-- name: api_tokens_all
SELECT token_id, name, scope, token_hash, access_key_id, created_at FROM api_tokens ORDER BY created_at, name;

-- name: api_token_delete
DELETE FROM api_tokens WHERE token_id = %(token_id)s;

-- name: purge_roots
SELECT execution_id FROM executions
WHERE parent_execution_id IS NULL AND finished_at IS NOT NULL AND finished_at < %(before)s
ORDER BY finished_at
LIMIT %(limit)s
-- Two workers purging at once take different executions.
FOR UPDATE SKIP LOCKED;

-- name: purge_children
SELECT execution_id FROM executions WHERE parent_execution_id = ANY(%(ids)s);

-- name: purge_history
DELETE FROM history WHERE execution_id = ANY(%(ids)s);

-- name: purge_branches
DELETE FROM branches WHERE execution_id = ANY(%(ids)s);

-- name: purge_joins
DELETE FROM joins WHERE execution_id = ANY(%(ids)s);

-- name: purge_work
DELETE FROM work WHERE execution_id = ANY(%(ids)s);

-- name: purge_executions
DELETE FROM executions WHERE execution_id = ANY(%(ids)s);
-- name: execution_by_name
SELECT * FROM executions WHERE workflow_name = %(workflow_name)s AND name = %(name)s ORDER BY seq DESC LIMIT 1;

-- name: resource_put
INSERT INTO resources (kind, key, body) VALUES (%(kind)s, %(key)s, %(body)s)
ON CONFLICT (kind, key) DO UPDATE SET body = EXCLUDED.body;

-- name: resource_insert
INSERT INTO resources (kind, key, body) VALUES (%(kind)s, %(key)s, %(body)s) ON CONFLICT (kind, key) DO NOTHING;

-- name: resource_get
SELECT key, body FROM resources WHERE kind = %(kind)s AND key = %(key)s;

-- name: resource_list
SELECT key, body FROM resources WHERE kind = %(kind)s AND starts_with(key, %(prefix)s)
ORDER BY key COLLATE "C";

-- name: resource_delete
DELETE FROM resources WHERE kind = %(kind)s AND key = %(key)s;

-- name: resource_take
DELETE FROM resources WHERE (kind, key) = (
    SELECT kind, key FROM resources WHERE kind = %(kind)s AND starts_with(key, %(prefix)s)
    ORDER BY key COLLATE "C" LIMIT 1 FOR UPDATE SKIP LOCKED
) RETURNING key, body;

-- name: execution_reopen
UPDATE executions SET status = 'RUNNING', output = NULL, error = NULL, cause = NULL, finished_at = NULL,
    redrive_count = redrive_count + 1, redrive_date = %(now)s
WHERE execution_id = %(execution_id)s AND status = %(status)s;

-- name: join_get
SELECT * FROM joins WHERE join_id = %(join_id)s;

-- name: join_update_limits
UPDATE joins SET max_concurrency = %(max_concurrency)s, tolerated_count = %(tolerated_count)s,
    tolerated_pct = %(tolerated_pct)s, started = %(started)s
WHERE join_id = %(join_id)s;

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
SELECT execution_id FROM executions WHERE execution_id = ANY(%(ids)s) AND status != 'RUNNING';

-- name: work_counts
-- For /metrics: what the claim query would take now (due), what waits for its time (scheduled), what
-- live leases hold (claimed). One pass over the work table, which holds only pending work.
SELECT
    COUNT(*) FILTER (WHERE owner IS NOT NULL AND lease_until >= %(now)s) AS claimed,
    COUNT(*) FILTER (WHERE (owner IS NULL OR lease_until < %(now)s) AND due_at <= %(now)s) AS due,
    COUNT(*) FILTER (WHERE (owner IS NULL OR lease_until < %(now)s) AND due_at > %(now)s) AS scheduled
FROM work;

-- name: executions_running_by_workflow
SELECT workflow_name, COUNT(*) AS running FROM executions WHERE status = %(status)s GROUP BY workflow_name;

-- triggers (schedules and event sources) ---------------------------------------------------------------

-- name: execution_insert_new
-- A trigger's execution id derives from its tick or message: a repeated start inserts nothing.
INSERT INTO executions (execution_id, workflow_id, workflow_name, workflow_version, name, status, input,
                        output, error, cause, started_at, finished_at, callback_url, express,
                        parent_execution_id)
VALUES (%(execution_id)s, %(workflow_id)s, %(workflow_name)s, %(workflow_version)s, %(name)s, %(status)s,
        %(input)s, %(output)s, %(error)s, %(cause)s, %(started_at)s, %(finished_at)s, %(callback_url)s,
        %(express)s, %(parent_execution_id)s)
ON CONFLICT (execution_id) DO NOTHING;

-- name: work_of_execution
SELECT work_id, execution_id, branch_id, kind, due_at, payload, owner, fence FROM work
WHERE execution_id = %(execution_id)s ORDER BY due_at, work_id;

-- name: work_delete_all_of_execution
DELETE FROM work WHERE execution_id = %(execution_id)s;

-- name: ping
SELECT 1;
