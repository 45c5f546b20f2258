DROP INDEX instances_created;
DROP INDEX inputs_created;
DROP INDEX timers_done;
DROP INDEX effects_delivered;
