DROP INDEX instances_type_status;
ALTER TABLE instances DROP CONSTRAINT instances_pkey, ADD PRIMARY KEY (type, id);
