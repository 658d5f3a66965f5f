"""The audit log's errors, each with its stable code (the API answers them as problems)."""

from __future__ import annotations

from fundpool.core.errors import FundpoolError


class AuditSeqOutOfRange(FundpoolError):
    code = "audit_seq_out_of_range"
    title = "no entry of the audit log has this seq (or it is past the latest checkpoint)"


class AuditSizesOutOfOrder(FundpoolError):
    code = "audit_sizes_out_of_order"
    title = "a consistency proof needs 0 < first <= second"


class AuditSizeOutOfRange(FundpoolError):
    code = "audit_size_out_of_range"
    title = "the size is larger than the audit log"


class NoAuditCheckpoint(FundpoolError):
    code = "no_audit_checkpoint"
    title = "the audit log has no checkpoint yet: run `fundpool audit checkpoint`"


class InvalidAuditRange(FundpoolError):
    code = "invalid_audit_range"
    title = "the range is empty or its end is before its start"
