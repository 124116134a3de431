-- A DISTRIBUTED Map runs each item as a child execution that points at the execution that started it.
ALTER TABLE executions ADD COLUMN parent_execution_id TEXT;
CREATE INDEX executions_by_parent ON executions (parent_execution_id, seq);
