-- The dead effects of one type (GET /v1/effects?workflow_type=…&status=dead, the
-- console's Needs attention page) in rid order. effects_status orders every dead effect
-- by rid and effects_instance every effect of the type; neither finds the few dead ones
-- of a type without reading past the rest, and the planner chose to sort the type's
-- rows (700 ms for the first page at 5,500,000 instances). Only an effect that dies is
-- written to this index, so the delivery path pays nothing for it.
CREATE INDEX effects_dead_by_type ON effects (workflow_type, rid) WHERE status = 'dead';
