-- A claim of effects reads the due rows it may deliver, and only those (decision 0032).
-- One due index in due order made every claim read past the due rows of types it could
-- not deliver: a type whose endpoint is disabled or missing, and a type whose share of
-- the worker's slots is in use (a slow receiver with a backlog), all inside the single
-- writer's transaction. Each pending row still has one due entry: sends (delivered in
-- process) in due order, webhook effects by type, then due order, read one active
-- endpoint at a time. The same indexes as PostgreSQL's migration 000014.
DROP INDEX IF EXISTS effects_due;
CREATE INDEX effects_due_sends ON effects (next_attempt_at)
    WHERE status = 'pending' AND send_workflow_type <> '';
CREATE INDEX effects_due_by_type ON effects (workflow_type, next_attempt_at)
    WHERE status = 'pending' AND send_workflow_type = '';
