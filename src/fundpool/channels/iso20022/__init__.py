"""The ISO 20022 messages of a bank rail: pure format code, bytes in and frozen values out,
values in and bytes out. Nothing here opens a file or a socket, except to read its own
schemas (schemas/).

- `pain001.py`: the customer credit transfer initiation fundpool sends (pain.001.001.09 and
  .03), validated against ISO 20022's schema before it leaves; read back for the simulator.
- `status.py`: the bank's customer payment status report (pain.002.001.10 and .03).
- `camt.py`: the bank's statements (camt.053) and debit/credit notifications (camt.054),
  read from .001.02 and .001.08 into `fundpool.recon.model` values, written as .001.08.
- `document.py`: what they share: safe parsing (defusedxml, no DTD), the place of every
  element, dates, amounts and deterministic serialization.
- `errors.py`: the writers' refusals. The readers refuse with `recon.model.FileRefused`.
"""
