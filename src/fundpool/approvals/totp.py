"""TOTP (RFC 6238, with pyotp) for sensitive actions: approvals above a threshold, rule and
policy activation, key registration, role changes.

A code is good for its 30-second step and the one before (a code typed just as it turns).
A code from an older step, up to `EXPIRED_STEPS_SHOWN` back, is `totp_expired` rather than
`totp_invalid`, so the user knows to type the current one. A code is used once: the store
keeps the last step used per user, and a code of that step or an earlier one is
`totp_reused`.
"""

from __future__ import annotations

import hmac

import pyotp

from fundpool.approvals.model import TotpExpired, TotpInvalid, TotpRequired, TotpReused

STEP_S = 30
ACCEPTED_STEPS_BACK = 1  # the current step and the one before
EXPIRED_STEPS_SHOWN = 20  # older codes up to ten minutes back are said to be expired
ISSUER = "fundpool"


def new_secret() -> str:
    return pyotp.random_base32()


def uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def code_at(secret: str, at_us: int) -> str:
    return pyotp.TOTP(secret).at(at_us // 1_000_000)


def check(secret: str, code: str | None, at_us: int, last_step: int) -> int:
    """The step `code` belongs to, if it is good now and newer than `last_step`; raises
    otherwise."""
    if code is None or not str(code).strip():
        raise TotpRequired()
    code = str(code).strip().replace(" ", "")
    if not code.isdigit() or len(code) != 6:
        raise TotpInvalid("a TOTP code is 6 digits", field="totp")
    totp = pyotp.TOTP(secret)
    now_step = at_us // 1_000_000 // STEP_S
    for back in range(EXPIRED_STEPS_SHOWN + 1):
        step = now_step - back
        if hmac.compare_digest(totp.at(step * STEP_S), code):
            if back > ACCEPTED_STEPS_BACK:
                raise TotpExpired(steps_old=back)
            if step <= last_step:
                raise TotpReused()
            return step
    raise TotpInvalid(field="totp")
