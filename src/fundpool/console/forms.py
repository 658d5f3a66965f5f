"""A console form's one submission: the `Idempotency-Key` its clicks send.

The key is made when the form is shown and kept while the form's values stay as they are, so
a double click on "Create" (or a click again after the server did not answer) sends the same
request, and the API creates one payment and answers the second with it. Any changed value
makes the next click a new submission with a new key; so does a refusal that is final
(nothing was created), so that corrected values are not taken for a conflicting replay.
"""

from __future__ import annotations

import uuid

from fundpool.client.errors import ApiError, RateLimited, ServerError, Unreachable

# A refusal that may not be final: the same request could still have gone through, or may be
# taken if sent again as it is, so the form keeps its Idempotency-Key.
UNSETTLED_CODES = frozenset({"idempotency_in_progress"})


class Submission:
    """One form's `Idempotency-Key`: made when the form is shown, kept while its values stay
    as they are, so a double click (or a retry after no answer) sends the same request and
    the API creates one payment; a changed value makes the next click a new submission.

    `busy` ignores a click while the previous one is waiting for the API."""

    def __init__(self) -> None:
        self.key = _new_key()
        self.busy = False
        self.last_created: str | None = None  # the payment the last answer named
        self._changed_while_busy = False

    def changed(self) -> None:
        """A value of the form changed: its next click is a new submission."""
        if self.busy:
            self._changed_while_busy = True  # the request on its way keeps its key
        else:
            self.key = _new_key()

    def answered(self, error: ApiError | None) -> None:
        """The API answered the click: a refusal that is final frees the key (nothing was
        created: the same values may be sent again as a new submission, once corrected)."""
        if self._changed_while_busy or (error is not None and not _unsettled(error)):
            self.key = _new_key()
        self._changed_while_busy = False


def _new_key() -> str:
    return f"console-{uuid.uuid4()}"


def _unsettled(error: ApiError) -> bool:
    return isinstance(error, Unreachable | ServerError | RateLimited) \
        or error.code in UNSETTLED_CODES
