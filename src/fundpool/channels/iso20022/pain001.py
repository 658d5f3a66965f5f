"""pain.001, the customer credit transfer initiation: the payout file a bank rail sends.

One message holds one payment information block (`PmtInf`): one debtor account, one requested
execution date, one currency, and its credit transfers (`CdtTrfTxInf`). Each transfer carries
its end-to-end id, which the bank hands back unchanged in its status reports (pain.002) and
statements (camt.053/054): fundpool writes the payment's id there to find the payment again.

`write_pain001` writes pain.001.001.09 (the default) or pain.001.001.03:

- `GrpHdr`: MsgId, CreDtTm (UTC, with its `Z`), NbOfTxs, CtrlSum, InitgPty/Nm (the debtor);
- `PmtInf`: PmtInfId, PmtMtd `TRF`, NbOfTxs, CtrlSum, PmtTpInf/SvcLvl `SEPA` when the currency
  is EUR and every account is an IBAN, ReqdExctnDt (the UTC date of `execution_date_us`),
  Dbtr, DbtrAcct (with its currency), DbtrAgt (the BIC, or `Othr/Id` NOTPROVIDED), ChrgBr
  `SLEV`;
- per transfer: PmtId/EndToEndId, Amt/InstdAmt, CdtrAgt (when a BIC is given), Cdtr,
  CdtrAcct, RmtInf/Ustrd.

Before a byte is written the values are checked: ids are 1 to 35 characters and never cut;
names are cut to 70 characters (what SEPA banks take); an account that looks like an IBAN
must be one (`schwifty`), any other goes in `Othr/Id`; a BIC must be one. The bytes are then
validated against ISO 20022's own schema for the version (schemas/), so a bug in this writer
refuses the payout instead of leaving as a file the bank rejects.

`read_pain001` is the other side, for the simulated bank: it validates a file against the
same schema, then reads it back into the values `write_pain001` was given.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from xml.etree.ElementTree import Element

import xmlschema
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from fundpool.channels.iso20022.document import (
    Node,
    amount_text,
    checked_currency,
    checked_text,
    indexed_path,
    iso_date,
    iso_datetime,
    new_document,
    read_document,
    serialize,
    sub,
)
from fundpool.channels.iso20022.errors import InvalidAccount, MessageNotWritable
from fundpool.recon.formats import amount_minor as read_amount
from fundpool.recon.model import FileRefused, UnknownMessage

VERSIONS = ("pain.001.001.09", "pain.001.001.03")
DEFAULT_VERSION = "pain.001.001.09"
ID_LENGTH_MAX = 35  # Max35Text: MsgId, PmtInfId, EndToEndId
NAME_LENGTH_MAX = 70  # the schemas take 140; SEPA banks cut at 70, so fundpool cuts first
OTHER_ACCOUNT_LENGTH_MAX = 34  # GenericAccountIdentification1/Id is Max34Text
REMITTANCE_LENGTH_MAX = 140  # one Ustrd line
# Far above what a bank takes in one file; a runaway batch is refused here, not at the bank.
TRANSFERS_MAX = 100_000
NOT_PROVIDED = "NOTPROVIDED"  # the agreed id of a debtor agent given without a BIC
SEPA_CURRENCY = "EUR"
CHARGE_BEARER = "SLEV"  # charges follow the service level: each side pays its own bank

_BODY = "CstmrCdtTrfInitn"
_LOOKS_LIKE_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}\Z")
# pain.001.001.03's BICIdentifier is stricter than later versions' (letters in the bank code).
_BIC_2009 = re.compile(r"[A-Z]{6}[A-Z2-9][A-NP-Z0-9]([A-Z0-9]{3})?\Z")
_REPEATING = frozenset({"PmtInf", "CdtTrfTxInf", "Ustrd"})
_BIC_TAG = {"pain.001.001.03": "BIC", "pain.001.001.09": "BICFI"}


@dataclass(frozen=True, slots=True)
class Party:
    name: str
    account: str  # an IBAN or another account number
    bic: str | None = None


@dataclass(frozen=True, slots=True)
class CreditTransfer:
    end_to_end_id: str
    amount_minor: int
    creditor: Party
    remittance: str | None = None


@dataclass(frozen=True, slots=True)
class Pain001:
    """A pain.001 as read back: one payment information block and its transfers."""

    message_id: str
    created_at_us: int
    payment_info_id: str
    debtor: Party
    asset: str
    execution_date_us: int  # midnight UTC of the requested execution date
    transfers: tuple[CreditTransfer, ...]
    version: str


# --- writing -------------------------------------------------------------------------------


def write_pain001(*, message_id: str, created_at_us: int, debtor: Party, payment_info_id: str,
                  execution_date_us: int, asset: str, scale: int,
                  transfers: Sequence[CreditTransfer],
                  version: str = DEFAULT_VERSION) -> bytes:
    """The pain.001 for these transfers, checked value by value, then against the schema."""
    if version not in VERSIONS:
        raise MessageNotWritable(f"fundpool writes {' and '.join(VERSIONS)}, not {version!r}",
                                 field="version", place="Document", found=version,
                                 expected=list(VERSIONS))
    header_place = f"Document/{_BODY}/GrpHdr"
    info_place = f"Document/{_BODY}/PmtInf[1]"
    checked_text(message_id, limit=ID_LENGTH_MAX, field="message_id",
                 place=f"{header_place}/MsgId")
    checked_text(payment_info_id, limit=ID_LENGTH_MAX, field="payment_info_id",
                 place=f"{info_place}/PmtInfId")
    checked_currency(asset, place=f"{info_place}/CdtTrfTxInf[1]/Amt/InstdAmt/@Ccy")
    if not transfers or len(transfers) > TRANSFERS_MAX:
        raise MessageNotWritable(f"a pain.001 holds 1 to {TRANSFERS_MAX} transfers",
                                 field="transfers", place=f"{info_place}/CdtTrfTxInf",
                                 found=len(transfers))
    debtor_place = f"{info_place}/Dbtr"
    debtor_name = _name(debtor.name, place=f"{debtor_place}/Nm",
                        payment_info_id=payment_info_id)
    debtor_account = _account(debtor.account, place=f"{info_place}/DbtrAcct/Id",
                              party="debtor", payment_info_id=payment_info_id)
    debtor_bic = _bic(debtor.bic, version, place=f"{info_place}/DbtrAgt/FinInstnId",
                      party="debtor", payment_info_id=payment_info_id)

    rows: list[tuple[CreditTransfer, str, str, tuple[str, str], str | None]] = []
    seen: set[str] = set()
    total_minor = 0
    for position, transfer in enumerate(transfers, start=1):
        place = f"{info_place}/CdtTrfTxInf[{position}]"
        end_to_end_id = checked_text(transfer.end_to_end_id, limit=ID_LENGTH_MAX,
                                     field="end_to_end_id", place=f"{place}/PmtId/EndToEndId")
        if end_to_end_id in seen:
            raise MessageNotWritable("two transfers carry the same end-to-end id: the bank's "
                                     "answers could not tell them apart", field="end_to_end_id",
                                     place=f"{place}/PmtId/EndToEndId", found=end_to_end_id,
                                     end_to_end_id=end_to_end_id)
        seen.add(end_to_end_id)
        if isinstance(transfer.amount_minor, bool) or not isinstance(transfer.amount_minor, int) \
                or transfer.amount_minor <= 0:
            raise MessageNotWritable("a credit transfer's amount is a positive integer of minor "
                                     "units", field="amount_minor", place=f"{place}/Amt/InstdAmt",
                                     found=repr(transfer.amount_minor),
                                     end_to_end_id=end_to_end_id)
        amount = amount_text(transfer.amount_minor, scale, place=f"{place}/Amt/InstdAmt",
                             end_to_end_id=end_to_end_id, asset=asset)
        total_minor += transfer.amount_minor
        creditor = transfer.creditor
        name = _name(creditor.name, place=f"{place}/Cdtr/Nm", end_to_end_id=end_to_end_id)
        account = _account(creditor.account, place=f"{place}/CdtrAcct/Id", party="creditor",
                           end_to_end_id=end_to_end_id)
        bic = _bic(creditor.bic, version, place=f"{place}/CdtrAgt/FinInstnId",
                   party="creditor", end_to_end_id=end_to_end_id)
        if transfer.remittance is not None:
            checked_text(transfer.remittance, limit=REMITTANCE_LENGTH_MAX, field="remittance",
                         place=f"{place}/RmtInf/Ustrd", end_to_end_id=end_to_end_id)
        rows.append((transfer, amount, name, account, bic))
    control_sum = amount_text(total_minor, scale, place=f"{header_place}/CtrlSum", asset=asset)
    sepa = asset == SEPA_CURRENCY and debtor_account[0] == "IBAN" and all(
        row[3][0] == "IBAN" for row in rows)

    root, body = new_document(version, _BODY)
    header = sub(body, "GrpHdr")
    sub(header, "MsgId", message_id)
    sub(header, "CreDtTm", iso_datetime(created_at_us))
    sub(header, "NbOfTxs", str(len(rows)))
    sub(header, "CtrlSum", control_sum)
    sub(sub(header, "InitgPty"), "Nm", debtor_name)

    info = sub(body, "PmtInf")
    sub(info, "PmtInfId", payment_info_id)
    sub(info, "PmtMtd", "TRF")
    sub(info, "NbOfTxs", str(len(rows)))
    sub(info, "CtrlSum", control_sum)
    if sepa:
        sub(sub(sub(info, "PmtTpInf"), "SvcLvl"), "Cd", "SEPA")
    execution = sub(info, "ReqdExctnDt")
    if version == "pain.001.001.03":
        execution.text = iso_date(execution_date_us)
    else:
        sub(execution, "Dt", iso_date(execution_date_us))
    sub(sub(info, "Dbtr"), "Nm", debtor_name)
    _sub_account(info, "DbtrAcct", debtor_account, currency=asset)
    agent = sub(sub(info, "DbtrAgt"), "FinInstnId")
    if debtor_bic is None:
        sub(sub(agent, "Othr"), "Id", NOT_PROVIDED)
    else:
        sub(agent, _BIC_TAG[version], debtor_bic)
    sub(info, "ChrgBr", CHARGE_BEARER)
    for transfer, amount, name, account, bic in rows:
        item = sub(info, "CdtTrfTxInf")
        sub(sub(item, "PmtId"), "EndToEndId", transfer.end_to_end_id)
        sub(sub(item, "Amt"), "InstdAmt", amount, Ccy=asset)
        if bic is not None:
            sub(sub(sub(item, "CdtrAgt"), "FinInstnId"), _BIC_TAG[version], bic)
        sub(sub(item, "Cdtr"), "Nm", name)
        _sub_account(item, "CdtrAcct", account)
        if transfer.remittance is not None:
            sub(sub(item, "RmtInf"), "Ustrd", transfer.remittance)
    data = serialize(root)
    try:
        validate_pain001(data, version, name=f"{message_id}.xml")
    except FileRefused as refused:
        raise MessageNotWritable(f"the {version} written does not pass its schema (a bug in "
                                 f"the writer, or a value it does not check): {refused.detail}",
                                 field="message", message_id=message_id,
                                 place=refused.facts.get("place")) from refused
    return data


def _name(value: object, *, place: str, **naming: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MessageNotWritable("a party needs a name", field="name", place=place,
                                 found=repr(value), **naming)
    cut = value.strip()[:NAME_LENGTH_MAX].rstrip()
    return checked_text(cut, limit=NAME_LENGTH_MAX, field="name", place=place, **naming)


def _account(account: object, *, place: str, party: str, **naming: object) -> tuple[str, str]:
    """("IBAN", compact IBAN) or ("Othr", account number)."""
    if not isinstance(account, str) or not account.strip():
        raise InvalidAccount("the account is empty", place=place, party=party,
                             account=repr(account), **naming)
    compact = "".join(account.split()).upper()
    if _LOOKS_LIKE_IBAN.match(compact):
        try:
            return "IBAN", IBAN(compact).compact
        except SchwiftyException as error:
            raise InvalidAccount(f"{account!r} is not a valid IBAN: {error}", place=place,
                                 party=party, account=account, why=str(error),
                                 **naming) from None
    other = account.strip()
    if len(other) > OTHER_ACCOUNT_LENGTH_MAX:
        raise InvalidAccount(f"an account number is at most {OTHER_ACCOUNT_LENGTH_MAX} "
                             "characters", place=place, party=party, account=account, **naming)
    try:
        checked_text(other, limit=OTHER_ACCOUNT_LENGTH_MAX, field="account", place=place)
    except MessageNotWritable as refused:
        raise InvalidAccount(refused.detail, place=place, party=party, account=account,
                             **naming) from None
    return "Othr", other


def _bic(bic: object, version: str, *, place: str, party: str,
         **naming: object) -> str | None:
    if bic is None:
        return None
    if not isinstance(bic, str):
        raise InvalidAccount("a BIC is text", place=place, party=party, bic=repr(bic), **naming)
    try:
        compact = BIC(bic.strip()).compact
    except SchwiftyException as error:
        raise InvalidAccount(f"{bic!r} is not a valid BIC: {error}", place=place, party=party,
                             bic=bic, why=str(error), **naming) from None
    if version == "pain.001.001.03" and not _BIC_2009.match(compact):
        raise InvalidAccount(f"{version} takes only BICs whose bank code is letters",
                             place=place, party=party, bic=bic, **naming)
    return compact


def _sub_account(parent: Element, tag: str, account: tuple[str, str], *,
                 currency: str | None = None) -> None:
    holder = sub(parent, tag)
    identification = sub(holder, "Id")
    kind, value = account
    if kind == "IBAN":
        sub(identification, "IBAN", value)
    else:
        sub(sub(identification, "Othr"), "Id", value)
    if currency is not None:
        sub(holder, "Ccy", currency)


# --- the schema ----------------------------------------------------------------------------


@functools.cache
def _schema(version: str) -> xmlschema.XMLSchema:
    # Loaded once per process: building a schema takes a tenth of a second, validating a file
    # a few milliseconds. `local`: the schemas import nothing, and xmlschema fetches nothing.
    source = resources.files("fundpool.channels.iso20022").joinpath("schemas", f"{version}.xsd")
    with resources.as_file(source) as path:
        return xmlschema.XMLSchema(str(path), allow="local")


def validate_pain001(data: bytes, version: str, *, name: str | None = None) -> None:
    """Refuse `data` unless it is a well-formed, safe `version` message its schema accepts.
    The refusal names the first place the schema rejects."""
    file = name or f"{version}.xml"
    if version not in VERSIONS:
        raise UnknownMessage(f"fundpool validates {' and '.join(VERSIONS)}, not {version!r}",
                             file=file, place="Document", found=version,
                             expected=list(VERSIONS))
    document, _ = read_document(data, file, messages=[version])
    _validate(document, version)


def _validate(document: Node, version: str) -> None:
    error = next(iter(_schema(version).iter_errors(document.element)), None)
    if error is None:
        return
    element = error.elem if isinstance(error.elem, Element) else document.element
    place = indexed_path(document.element, element, repeating=_REPEATING)
    raise FileRefused(f"not a valid {version}: {error.reason}", file=document.file,
                      place=place, why=error.reason or "", message=version)


# --- reading (the simulated bank's side) ---------------------------------------------------


def read_pain001(data: bytes, name: str, *, scales: Mapping[str, int]) -> Pain001:
    """A pain.001 validated against its schema, then read whole into values."""
    document, version = read_document(data, name, messages=VERSIONS)
    _validate(document, version)
    body = document.need(_BODY)
    header = body.need("GrpHdr")
    infos = body.children("PmtInf")
    if len(infos) != 1:
        raise infos[1].refuse("fundpool's bank rail writes one payment information block per "
                              "message", found=len(infos), expected=1)
    info = infos[0]
    items = info.children("CdtTrfTxInf")
    if len(items) > TRANSFERS_MAX:
        raise info.refuse(f"more than {TRANSFERS_MAX} transfers", found=len(items))
    bic_tag = _BIC_TAG[version]

    asset: str | None = None
    transfers: list[CreditTransfer] = []
    for item in items:
        amount_node = item.need("Amt/InstdAmt")
        amount_minor, currency = amount_node.amount_minor(scales)
        if asset is not None and currency != asset:
            raise amount_node.refuse("the transfers of one payment information block are in "
                                     "one currency", found=currency, expected=asset)
        asset = currency
        transfers.append(CreditTransfer(
            end_to_end_id=item.need_text("PmtId/EndToEndId"),
            amount_minor=amount_minor,
            creditor=Party(item.need_text("Cdtr/Nm"), _read_account(item.need("CdtrAcct")),
                           item.text_of(f"CdtrAgt/FinInstnId/{bic_tag}")),
            remittance=_read_remittance(item),
        ))
    if asset is None:  # the schema needs one CdtTrfTxInf; kept for the type checker
        raise info.refuse("no credit transfer")
    total_minor = sum(transfer.amount_minor for transfer in transfers)
    for node in (header, info):
        _check_totals(node, len(transfers), total_minor, asset, scales)

    execution = info.need("ReqdExctnDt")
    debtor_bic = info.text_of(f"DbtrAgt/FinInstnId/{bic_tag}")
    return Pain001(
        message_id=header.need_text("MsgId"),
        created_at_us=header.need("CreDtTm").datetime_us(),
        payment_info_id=info.need_text("PmtInfId"),
        debtor=Party(info.need_text("Dbtr/Nm"), _read_account(info.need("DbtrAcct")),
                     debtor_bic),
        asset=asset,
        execution_date_us=(execution.date_us() if version == "pain.001.001.03"
                           else execution.date_choice_us()),
        transfers=tuple(transfers),
        version=version,
    )


def _read_remittance(item: Node) -> str | None:
    remittance = item.child("RmtInf")
    lines = remittance.texts("Ustrd") if remittance is not None else []
    return " ".join(lines) if lines else None


def _read_account(account: Node) -> str:
    iban = account.text_of("Id/IBAN")
    return iban if iban is not None else account.need_text("Id/Othr/Id")


def _check_totals(node: Node, count: int, total_minor: int, asset: str,
                  scales: Mapping[str, int]) -> None:
    stated = node.text_of("NbOfTxs")
    if stated is not None and int(stated) != count:
        raise node.need("NbOfTxs").refuse(f"NbOfTxs says {stated}, the message holds {count}",
                                          found=stated, expected=count)
    control = node.child("CtrlSum")
    if control is None:
        return
    # CtrlSum has no currency of its own: it is read at the transfers' scale.
    control_minor = read_amount(control.text, scales[asset], asset, file=control.file,
                                place=control.place)
    if control_minor != total_minor:
        raise control.refuse(f"CtrlSum says {control.text}, the transfers add up to "
                             f"{total_minor} minor units", found=control.text,
                             expected_minor=total_minor)
