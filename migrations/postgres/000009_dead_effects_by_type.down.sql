DROP INDEX IF EXISTS effects_dead_by_type;
