-- Moves with every change to a service or a workflow, in the same transaction: a process that caches
-- definitions drops its cache when the value it last saw has moved (another process changed one).
CREATE TABLE definitions_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO definitions_generation (id, value) VALUES (1, 0);
