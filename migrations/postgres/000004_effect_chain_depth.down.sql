ALTER TABLE effects DROP COLUMN chain_depth;
