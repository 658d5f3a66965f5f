-- Who did it, and where a payout goes (docs/adr/0015-attribution-and-four-eyes.md):
-- - payments.initiated_by: the creation's actor as JSON text (Actor.to_dict), kept on the row so
--   a list page shows who initiated each payment without reading its events, and the four-eyes
--   check compares an approver with it inside the approving transaction;
-- - payments.destination: a payout's payee account number, IBAN or chain address;
-- - payment_events.actor: each step's actor as JSON text.
-- Rows written before this migration keep NULL: their actor is unknown.
ALTER TABLE payments ADD COLUMN initiated_by TEXT;
ALTER TABLE payments ADD COLUMN destination TEXT;
ALTER TABLE payment_events ADD COLUMN actor TEXT;
