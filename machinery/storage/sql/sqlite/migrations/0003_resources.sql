-- Records of the front doors the engine never reads (AWS published versions, aliases, tags, activities).
CREATE TABLE resources (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
-- Execution ARNs name the workflow and the execution: looked up by both.
CREATE INDEX executions_by_name ON executions (workflow_name, name, seq);
