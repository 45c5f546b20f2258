-- The for_each element an effect was emitted for, kept for its on_dead input, which
-- sees it as item and index when the effect dies: the list it came from was evaluated
-- on a state that is gone by then. item is the element as compact JSON (NULL: the
-- effect has no for_each, or no on_dead data that reads it; rows written before this
-- migration) and item_index its position in the list.
ALTER TABLE effects ADD COLUMN item TEXT;
ALTER TABLE effects ADD COLUMN item_index INTEGER NOT NULL DEFAULT 0;
