ALTER TABLE instances RESET (fillfactor);
