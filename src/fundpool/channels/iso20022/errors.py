"""What the ISO 20022 writers refuse, each with its stable code.

Reading a message that cannot be taken is `fundpool.recon.model.FileRefused` (or its
subclasses `UnknownMessage`, `BalancesDoNotAddUp`): the readers of statements and of status
reports share them. These are the writers' refusals: values that cannot become a message the
bank takes, found before a byte is written.
"""

from __future__ import annotations

from fundpool.core import errors


class InvalidAccount(errors.InvalidAccount):
    """An IBAN whose checksum or length is wrong for its country, a BIC that is not one, an
    account number longer than the schema allows. Facts name the payment (`end_to_end_id`,
    or `payment_info_id` for the debtor), the `party` and what was given.

    It keeps the core's `invalid_account` code, so a caller that already answers that code
    answers this one too; only the title says that it is a bank account, not a ledger's."""

    code = "invalid_account"
    title = "the bank account (IBAN, account number) or the bank's BIC is not valid"


class MessageNotWritable(errors.FundpoolError):
    """The values cannot be written as the message asked for: an id longer than 35 characters,
    a currency that is not an ISO 4217 code, an amount with more decimals or digits than the
    schema takes, a statement whose balances do not add up. Facts: `field`, `found`, `place`
    (where in the message it would have gone) and, where it helps, `expected`."""

    code = "message_not_writable"
    title = "the values cannot be written as this ISO 20022 message"
