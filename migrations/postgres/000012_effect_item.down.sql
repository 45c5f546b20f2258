ALTER TABLE effects
    DROP COLUMN item,
    DROP COLUMN item_index;
