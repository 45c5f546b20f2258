ALTER TABLE effects DROP COLUMN item;
ALTER TABLE effects DROP COLUMN item_index;
