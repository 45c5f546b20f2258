-- Messages between instances and children (docs/decisions/0022-send-and-children.md).
--
-- An effect with a send target (send_workflow_type <> '') is delivered by the engine as
-- an input to that instance (its payload), not POSTed to a webhook, and so is claimed
-- without an endpoint. send_on_* is the child link of a send with child ('' without):
-- the instance the input creates records it.
--
-- An instance created by a send with child names its parent (parent_workflow_type <> '')
-- and keeps the link: the parent's input types sent when it completes or fails, and
-- what it does when the parent ends (terminate or abandon). instances_parent lists the
-- children of a parent.
ALTER TABLE effects ADD COLUMN send_workflow_type TEXT NOT NULL DEFAULT '';
ALTER TABLE effects ADD COLUMN send_workflow_id TEXT NOT NULL DEFAULT '';
ALTER TABLE effects ADD COLUMN send_on_completed TEXT NOT NULL DEFAULT '';
ALTER TABLE effects ADD COLUMN send_on_failed TEXT NOT NULL DEFAULT '';
ALTER TABLE effects ADD COLUMN send_on_parent_end TEXT NOT NULL DEFAULT '';

ALTER TABLE instances ADD COLUMN parent_workflow_type TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN parent_workflow_id TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN on_completed TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN on_failed TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN on_parent_end TEXT NOT NULL DEFAULT '';

CREATE INDEX instances_parent ON instances (parent_workflow_type, parent_workflow_id, rid)
    WHERE parent_workflow_type <> '';
