ALTER TABLE effect_attempts
    ADD CONSTRAINT effect_attempts_effect_id_fkey FOREIGN KEY (effect_id) REFERENCES effects (id) ON DELETE CASCADE;
