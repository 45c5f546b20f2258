-- An attempt is written only by the completion of its effect, in the transaction that
-- holds the effect's row locked (FOR UPDATE) after finding it claimed: the effect exists
-- at every commit that adds an attempt. Pruning deletes the attempts with their effect
-- in the same statement. The key's check cost a plan per attempt (completions plan
-- their statements for their rows, the trigger's query too): 6 % of the database's time
-- end to end (decision 0031).
ALTER TABLE effect_attempts DROP CONSTRAINT IF EXISTS effect_attempts_effect_id_fkey;
