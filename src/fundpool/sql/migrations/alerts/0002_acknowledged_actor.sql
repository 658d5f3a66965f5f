-- Who acknowledged an alert, as a whole actor (kind, id, name, roles, session or key, request
-- id: JSON text), beside the name `acknowledged_by` keeps. Alerts acknowledged before this
-- migration keep their name and have no actor (NULL).

ALTER TABLE alerts ADD COLUMN acknowledged_actor TEXT;
