-- Two instance lists read rows they do not return (docs/decisions/0025-instance-lists.md).
--
-- The primary key carries rid: a list with an id prefix reads the prefix's rids from
-- the key alone and fetches only the rows of its page, wherever the cursor lies. Before,
-- the page after a prefix's last row (ids given in order lie in one stretch of rids)
-- read every later instance, or every row of the prefix to learn its rid. The key is
-- written as often as before (on every insert and every update that is not HOT), each
-- entry 8 bytes wider.
ALTER TABLE instances DROP CONSTRAINT instances_pkey, ADD PRIMARY KEY (type, id) INCLUDE (rid);

-- The instances of one type in one status, in rid order: the capped counts by type
-- (GET /v1/workflow-counts?type=…) read each status's count from this index alone,
-- and a list by type and status reads its page in order. Before, each count checked
-- the type or the status on tens of thousands of rows (178 ms at 5,500,000 instances).
-- One more index entry per insert and per update that is not HOT (a change of status
-- or state is never HOT: instances_status and instances_state hold them).
CREATE INDEX instances_type_status ON instances (type, status, rid) WHERE status <> '';
