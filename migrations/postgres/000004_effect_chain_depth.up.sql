-- How many routed answers led to the input that emitted the effect: 0 for an input from
-- the API or a timer, the delivered effect's depth plus one for an input routed from a
-- webhook's answer. The effect worker stops a chain past IRONFLOW_MAX_CHAIN_DEPTH.
ALTER TABLE effects ADD COLUMN chain_depth INTEGER NOT NULL DEFAULT 0;
