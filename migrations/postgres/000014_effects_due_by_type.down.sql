DROP INDEX IF EXISTS effects_due_by_type;
DROP INDEX IF EXISTS effects_due_sends;
CREATE INDEX effects_due ON effects (next_attempt_at) WHERE status = 'pending';
