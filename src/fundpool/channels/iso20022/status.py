"""pain.002, the customer payment status report: the bank's answer to a pain.001.

It names the pain.001 it answers (`OrgnlGrpInfAndSts/OrgnlMsgId`) and says how it stands:

- for the whole message, `GrpSts` (`RJCT` rejects every payment of it, `PART` says some
  were rejected, `ACCP`/`ACTC`… accepts it), with a reason (`StsRsnInf/Rsn/Cd`, e.g. `FF01`);
- for its payment information block, `OrgnlPmtInfAndSts/PmtInfSts` with the same codes;
- per payment, `TxInfAndSts`: the original end-to-end id, `TxSts` and a reason (`AC04`
  account closed, `AM04` insufficient funds …) with the bank's words (`AddtlInf`).

A whole-group rejection often lists no payment at all: `StatusReport.rejects_all` says so,
and the caller rejects every payment of the original message. A payment without its own
`TxSts` takes its block's status, else the group's.

Read: pain.002.001.03 and pain.002.001.10. Written (for the simulated bank): the same two.
Every status code is checked against the ISO external code list before values are built;
`PaymentStatus.status` keeps the bank's exact code and `outcome` says what it means to a
payment (`TxStatus`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from xml.etree.ElementTree import Element

from fundpool.channels.iso20022.document import (
    Node,
    checked_text,
    iso_datetime,
    new_document,
    read_document,
    serialize,
    sub,
)
from fundpool.channels.iso20022.errors import MessageNotWritable
from fundpool.recon.model import FileRefused

VERSIONS = ("pain.002.001.10", "pain.002.001.03")
DEFAULT_VERSION = "pain.002.001.10"
# The pain.001 each version of the report answers by default (the same ISO 20022 release).
ORIGINAL_MESSAGE = {"pain.002.001.10": "pain.001.001.09", "pain.002.001.03": "pain.001.001.03"}
PAYMENTS_MAX = 100_000  # as many as a pain.001 holds (pain001.TRANSFERS_MAX)
REASON_TEXT_LENGTH_MAX = 105  # one AddtlInf line (Max105Text)
ID_LENGTH_MAX = 35

_BODY = "CstmrPmtStsRpt"


class TxStatus(StrEnum):
    """What a status code means to a payment; the exact ISO code stays in `status`."""

    ACCEPTED = "ACCP"  # the bank took it (checked, accepted, maybe already debited)
    SETTLED = "ACSC"  # the money left the debtor's account, or reached the creditor's
    REJECTED = "RJCT"
    PENDING = "PDNG"  # received or on hold: neither taken nor refused yet


# ISO 20022 ExternalPaymentTransactionStatus1Code, as far as a payment's fate goes.
OUTCOMES: Mapping[str, TxStatus] = {
    "ACTC": TxStatus.ACCEPTED,  # technical validation passed
    "ACCP": TxStatus.ACCEPTED,  # customer profile checked
    "ACSP": TxStatus.ACCEPTED,  # settlement in process
    "ACWC": TxStatus.ACCEPTED,  # accepted with a change (date, amount of charges)
    "ACWP": TxStatus.ACCEPTED,  # accepted without posting
    "ACFC": TxStatus.ACCEPTED,  # funds checked
    "ACIS": TxStatus.ACCEPTED,  # initiated and sent to the next party
    "ACPD": TxStatus.ACCEPTED,  # cleared
    "ACSC": TxStatus.SETTLED,  # settlement on the debtor's account completed
    "ACCC": TxStatus.SETTLED,  # settlement on the creditor's account completed
    "RJCT": TxStatus.REJECTED,
    "CANC": TxStatus.REJECTED,  # cancelled at the debtor's request: it will not be paid
    "PDNG": TxStatus.PENDING,
    "RCVD": TxStatus.PENDING,  # received, not yet checked
    "BLCK": TxStatus.PENDING,  # funds held by the bank (sanctions, investigation)
}
# Group and payment-information statuses: a payment's, plus partial acceptance.
GROUP_STATUSES = frozenset(OUTCOMES) | {"PART"}
# pain.002.001.03's closed code lists (later versions point to the external list instead).
_STATUSES_2009 = frozenset({"ACTC", "RJCT", "PDNG", "ACCP", "ACSP", "ACSC", "ACWC"})
_GROUP_STATUSES_2009 = _STATUSES_2009 | {"RCVD", "PART"}


@dataclass(frozen=True, slots=True)
class PaymentStatus:
    end_to_end_id: str
    status: str  # the ISO code: ACTC, ACCP, ACSP, ACSC, ACWC, RJCT, PDNG …
    reason: str | None = None  # StsRsnInf/Rsn/Cd (or Prtry): AC04, AM04 …
    reason_text: str | None = None  # AddtlInf, the bank's words

    @property
    def outcome(self) -> TxStatus:
        return OUTCOMES[self.status]


@dataclass(frozen=True, slots=True)
class StatusReport:
    message_id: str
    created_at_us: int
    original_message_id: str
    original_payment_info_id: str | None
    group_status: str | None  # GrpSts: ACCP, RJCT, PART …
    payments: tuple[PaymentStatus, ...]
    version: str
    payment_info_status: str | None = None  # PmtInfSts
    reason: str | None = None  # the group's (or the block's) StsRsnInf/Rsn/Cd
    reason_text: str | None = None
    original_message_name: str | None = None  # OrgnlMsgNmId: "pain.001.001.09"

    @property
    def rejects_all(self) -> bool:
        """The whole original message is refused, listed payment by payment or not."""
        return "RJCT" in (self.group_status, self.payment_info_status)


# --- reading -------------------------------------------------------------------------------


def parse_pain002(data: bytes, name: str) -> StatusReport:
    """A pain.002, read whole: every code checked before a value is built."""
    document, version = read_document(data, name, messages=VERSIONS)
    body = document.need(_BODY)
    header = body.need("GrpHdr")
    group = body.need("OrgnlGrpInfAndSts")
    group_status = _code(group, "GrpSts", GROUP_STATUSES)
    blocks = body.children("OrgnlPmtInfAndSts")
    payment_info_id: str | None = None
    payment_info_status: str | None = None
    block_reason: tuple[str | None, str | None] = (None, None)
    payments: list[PaymentStatus] = []
    seen: set[str] = set()
    for block in blocks:
        block_id = block.need_text("OrgnlPmtInfId")
        if payment_info_id is not None and block_id != payment_info_id:
            raise block.need("OrgnlPmtInfId").refuse(
                "a report about several payment information blocks: fundpool's pain.001 has "
                "one", found=block_id, expected=payment_info_id)
        payment_info_id = block_id
        block_status = _code(block, "PmtInfSts", GROUP_STATUSES)
        payment_info_status = block_status or payment_info_status
        if block.child("StsRsnInf") is not None:
            block_reason = _reason(block)
        for item in block.children("TxInfAndSts"):
            if len(payments) >= PAYMENTS_MAX:
                raise item.refuse(f"more than {PAYMENTS_MAX} payments in one report")
            end_to_end_id = item.need_text("OrgnlEndToEndId")
            if end_to_end_id in seen:
                raise item.need("OrgnlEndToEndId").refuse(
                    "the same payment is reported twice", found=end_to_end_id)
            seen.add(end_to_end_id)
            status = _code(item, "TxSts", frozenset(OUTCOMES))
            if status is None:
                status = _inherited(item, block_status or group_status)
            reason, reason_text = _reason(item)
            payments.append(PaymentStatus(end_to_end_id, status, reason, reason_text))
    if group_status is None and payment_info_status is None and not payments:
        raise FileRefused("the report gives no status: no GrpSts, PmtInfSts or TxInfAndSts",
                          file=name, place=group.place)
    reason, reason_text = (_reason(group) if group.child("StsRsnInf") is not None
                           else block_reason)
    return StatusReport(
        message_id=header.need_text("MsgId"),
        created_at_us=header.need("CreDtTm").datetime_us(),
        original_message_id=group.need_text("OrgnlMsgId"),
        original_payment_info_id=payment_info_id,
        group_status=group_status,
        payments=tuple(payments),
        version=version,
        payment_info_status=payment_info_status,
        reason=reason,
        reason_text=reason_text,
        original_message_name=group.text_of("OrgnlMsgNmId"),
    )


def _code(node: Node, tag: str, known: frozenset[str]) -> str | None:
    code = node.text_of(tag)
    if code is not None and code not in known:
        raise node.need(tag).refuse(f"{tag} {code!r} is not a status fundpool knows",
                                    found=code, expected=sorted(known))
    return code


def _inherited(item: Node, status: str | None) -> str:
    if status is None or status not in OUTCOMES:
        raise FileRefused("the payment has no TxSts, and no status of its block or group "
                          "applies to a single payment", file=item.file,
                          place=f"{item.place}/TxSts", found=status, expected="TxSts")
    return status


def _reason(node: Node) -> tuple[str | None, str | None]:
    """The first StsRsnInf: its code (ISO or proprietary) and its lines of text."""
    information = node.child("StsRsnInf")
    if information is None:
        return None, None
    code = information.text_of("Rsn/Cd") or information.text_of("Rsn/Prtry")
    lines = information.texts("AddtlInf")
    return code, " ".join(lines) if lines else None


# --- writing (the simulated bank's side) ---------------------------------------------------


def write_pain002(report: StatusReport, version: str = DEFAULT_VERSION) -> bytes:
    """The report as a pain.002 of `version`; codes and texts are checked first."""
    if version not in VERSIONS:
        raise MessageNotWritable(f"fundpool writes {' and '.join(VERSIONS)}, not {version!r}",
                                 field="version", place="Document", found=version,
                                 expected=list(VERSIONS))
    statuses = _STATUSES_2009 if version == "pain.002.001.03" else frozenset(OUTCOMES)
    group_statuses = _GROUP_STATUSES_2009 if version == "pain.002.001.03" else GROUP_STATUSES
    group_place = f"Document/{_BODY}/OrgnlGrpInfAndSts"
    block_place = f"Document/{_BODY}/OrgnlPmtInfAndSts[1]"
    checked_text(report.message_id, limit=ID_LENGTH_MAX, field="message_id",
                 place=f"Document/{_BODY}/GrpHdr/MsgId")
    checked_text(report.original_message_id, limit=ID_LENGTH_MAX, field="original_message_id",
                 place=f"{group_place}/OrgnlMsgId")
    _check_code(report.group_status, group_statuses, f"{group_place}/GrpSts")
    _check_code(report.payment_info_status, group_statuses, f"{block_place}/PmtInfSts")
    _check_reason(report.reason, report.reason_text, f"{group_place}/StsRsnInf")
    if report.original_payment_info_id is None and (report.payments or
                                                    report.payment_info_status):
        raise MessageNotWritable("payments are reported within their payment information "
                                 "block: original_payment_info_id is needed",
                                 field="original_payment_info_id",
                                 place=f"{block_place}/OrgnlPmtInfId", found=None)
    if len(report.payments) > PAYMENTS_MAX:
        raise MessageNotWritable(f"more than {PAYMENTS_MAX} payments in one report",
                                 field="payments", place=f"{block_place}/TxInfAndSts",
                                 found=len(report.payments))
    for position, payment in enumerate(report.payments, start=1):
        place = f"{block_place}/TxInfAndSts[{position}]"
        checked_text(payment.end_to_end_id, limit=ID_LENGTH_MAX, field="end_to_end_id",
                     place=f"{place}/OrgnlEndToEndId")
        _check_code(payment.status, statuses, f"{place}/TxSts")
        _check_reason(payment.reason, payment.reason_text, f"{place}/StsRsnInf")

    root, body = new_document(version, _BODY)
    header = sub(body, "GrpHdr")
    sub(header, "MsgId", report.message_id)
    sub(header, "CreDtTm", iso_datetime(report.created_at_us))
    group = sub(body, "OrgnlGrpInfAndSts")
    sub(group, "OrgnlMsgId", report.original_message_id)
    sub(group, "OrgnlMsgNmId", report.original_message_name or ORIGINAL_MESSAGE[version])
    if report.group_status is not None:
        sub(group, "GrpSts", report.group_status)
    _sub_reason(group, report.reason, report.reason_text)
    if report.original_payment_info_id is not None:
        checked_text(report.original_payment_info_id, limit=ID_LENGTH_MAX,
                     field="original_payment_info_id", place=f"{block_place}/OrgnlPmtInfId")
        block = sub(body, "OrgnlPmtInfAndSts")
        sub(block, "OrgnlPmtInfId", report.original_payment_info_id)
        if report.payment_info_status is not None:
            sub(block, "PmtInfSts", report.payment_info_status)
        for payment in report.payments:
            item = sub(block, "TxInfAndSts")
            sub(item, "OrgnlEndToEndId", payment.end_to_end_id)
            sub(item, "TxSts", payment.status)
            _sub_reason(item, payment.reason, payment.reason_text)
    return serialize(root)


def _check_code(code: str | None, known: frozenset[str], place: str) -> None:
    if code is not None and code not in known:
        raise MessageNotWritable(f"{code!r} is not a status this version carries",
                                 field="status", place=place, found=code,
                                 expected=sorted(known))


def _check_reason(reason: str | None, text: str | None, place: str) -> None:
    if reason is not None:
        checked_text(reason, limit=ID_LENGTH_MAX, field="reason", place=f"{place}/Rsn")
    if text is not None:
        checked_text(text, limit=REASON_TEXT_LENGTH_MAX, field="reason_text",
                     place=f"{place}/AddtlInf")


def _sub_reason(parent: Element, reason: str | None, text: str | None) -> None:
    if reason is None and text is None:
        return
    information = sub(parent, "StsRsnInf")
    if reason is not None:
        # ISO reason codes are four capitals (ExternalStatusReason1Code); anything else is
        # the bank's own, which the schema carries as Prtry.
        is_iso = len(reason) == 4 and reason.isascii() and reason.isalnum() and reason.isupper()
        sub(sub(information, "Rsn"), "Cd" if is_iso else "Prtry", reason)
    if text is not None:
        sub(information, "AddtlInf", text)
