"""Exchange rates for reporting, and exact conversion between assets.

A rate is an exact `Fraction`: units of the quote asset for one unit of the base asset, parsed
from decimal text (`"1.0843"`), never a float. Converting an amount of minor units is exact
until it rounds once, half to even, to the target's minor unit; a total made of parts is
converted once and shared out to its parts by largest remainder (docs/adr/0006).

The default source is a static TOML file:

    as_of = "2026-11-24T00:00:00Z"
    [rates]
    "EUR/USD" = "1.0843"
    "ETH/USD" = "3120.55"

Inverse and same-asset rates are derived; nothing is chained through a third asset, so a
missing pair is reported, not guessed.

`HttpRates` reads the same document as JSON from a URL (rates as decimal text in quotes; a
JSON number is refused) and keeps it for `ttl_s`. When a refresh fails it goes on serving the
last good rates until they are `stale_after_s` old, and then refuses (`RatesUnavailable`):
stale rates are never used silently.
"""

from __future__ import annotations

import json
import re
import threading
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import httpx

from fundpool.core.errors import FundpoolError, InvariantViolation
from fundpool.core.money import ASSET_CODE_PATTERN, Asset

RATE_TEXT_PATTERN = re.compile(r"^[0-9]{1,30}(?:\.[0-9]{1,30})?\Z")
RATES_FILE_BYTES_MAX = 1_000_000


class InvalidRates(FundpoolError):
    code = "invalid_rates"
    title = "the rates file is not valid"


class RatesUnavailable(FundpoolError):
    code = "rates_unavailable"
    title = "no exchange rates recent enough to use are available"


class RateSource(Protocol):
    def rate(self, base: str, quote: str) -> Fraction | None:
        """Units of `quote` for one unit of `base`, or None when the pair is unknown."""
        ...


@dataclass(frozen=True, slots=True)
class StaticRates:
    rates: Mapping[tuple[str, str], Fraction] = field(default_factory=dict)
    as_of: str | None = None

    def rate(self, base: str, quote: str) -> Fraction | None:
        if base == quote:
            return Fraction(1)
        direct = self.rates.get((base, quote))
        if direct is not None:
            return direct
        inverse = self.rates.get((quote, base))
        return None if inverse is None else 1 / inverse

    @classmethod
    def from_mapping(cls, document: Mapping[str, object], source: str = "rates") -> StaticRates:
        table = document.get("rates", {})
        if not isinstance(table, Mapping):
            raise InvalidRates("[rates] must be a table of \"BASE/QUOTE\" = \"decimal\"",
                               source=source)
        rates: dict[tuple[str, str], Fraction] = {}
        for pair, text in table.items():
            base, _, quote = str(pair).partition("/")
            if not (ASSET_CODE_PATTERN.match(base) and ASSET_CODE_PATTERN.match(quote)):
                raise InvalidRates("a pair is written BASE/QUOTE", source=source, pair=pair)
            if not isinstance(text, str) or not RATE_TEXT_PATTERN.match(text):
                raise InvalidRates(
                    "a rate is decimal text in quotes, like \"1.0843\" (never a float)",
                    source=source,
                    pair=pair,
                )
            rate = Fraction(text)
            if rate <= 0:
                raise InvalidRates("a rate is positive", source=source, pair=pair)
            rates[(base, quote)] = rate
        as_of = document.get("as_of")
        return cls(rates, None if as_of is None else str(as_of))

    @classmethod
    def load(cls, path: str | Path) -> StaticRates:
        file = Path(path)
        try:
            if file.stat().st_size > RATES_FILE_BYTES_MAX:
                raise InvalidRates(
                    "the rates file is too large", source=str(file),
                    bytes_max=RATES_FILE_BYTES_MAX,
                )
            document = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise InvalidRates(str(error), source=str(file)) from error
        return cls.from_mapping(document, str(file))


# --- rates over HTTP -------------------------------------------------------------------------

RATES_TTL_S = 60.0
RATES_TIMEOUT_S = 5.0
RATES_TIMEOUT_S_MAX = 60.0
# How long the last good rates stand in for a source that cannot be read: beyond it a quote
# is refused rather than priced on rates nobody has confirmed.
RATES_STALE_AFTER_S = 300.0
# After a failed refresh the next try waits this long (or the TTL, if shorter), so a dead
# server costs one time-out per interval, not one per quote.
RATES_RETRY_S = 5.0
RATES_RESPONSE_BYTES_MAX = RATES_FILE_BYTES_MAX

Fetch = Callable[[str, float, int], bytes]
"""`fetch(url, timeout_s, bytes_max)`: the response body, or `RatesUnavailable` when the source
cannot be read, or `InvalidRates` when what it sent is not rates (too large, for one)."""


def http_fetch(url: str, timeout_s: float, bytes_max: int) -> bytes:
    """GET `url`: the body of a 200 answer, read as it streams and refused past `bytes_max`
    bytes; the whole exchange, not only each read, must end within `timeout_s`."""
    started = time.monotonic()
    try:
        with (
            httpx.Client(timeout=timeout_s, follow_redirects=False) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != httpx.codes.OK:
                raise RatesUnavailable(
                    "the rates server did not answer 200 OK", url=url,
                    status=response.status_code,
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > bytes_max:
                raise _too_large(url, bytes_max)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > bytes_max:
                    raise _too_large(url, bytes_max)
                if time.monotonic() - started > timeout_s:
                    raise RatesUnavailable(
                        "the rates server was too slow to send its answer", url=url,
                        timeout_s=timeout_s,
                    )
            return bytes(body)
    except httpx.HTTPError as error:
        raise RatesUnavailable(
            f"the rates server could not be read: {type(error).__name__}: {error}", url=url
        ) from error


def rates_from_json(body: bytes, source: str = "rates") -> StaticRates:
    """Rates from a JSON document of the static file's shape:
    `{"as_of": "2026-12-07T10:00:00Z", "rates": {"EUR/USD": "1.0843"}}`."""
    if len(body) > RATES_RESPONSE_BYTES_MAX:
        raise _too_large(source, RATES_RESPONSE_BYTES_MAX)
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        # ValueError covers malformed JSON and integers too long to parse; RecursionError, a
        # document nested deeper than the parser goes.
        raise InvalidRates(f"the rates are not JSON: {error}", source=source) from error
    if not isinstance(document, dict):
        raise InvalidRates(
            'the rates are a JSON object {"as_of": ..., "rates": {"BASE/QUOTE": "decimal"}}',
            source=source,
        )
    table = document.get("rates")
    if not isinstance(table, dict) or not table:
        raise InvalidRates(
            'the rates document needs a non-empty "rates" object of "BASE/QUOTE": "decimal"',
            source=source,
        )
    as_of = document.get("as_of")
    if as_of is not None and not isinstance(as_of, str):
        raise InvalidRates('"as_of" is text, like "2026-12-07T10:00:00Z"', source=source)
    return StaticRates.from_mapping(document, source)


class HttpRates:
    """A `RateSource` read from `url` and kept for `ttl_s` seconds of the `now` clock.

    A refresh that fails (server not reached, not 200, slow, too large, not JSON, wrong shape,
    a rate that is not decimal text, one of `pairs` missing) leaves the last good rates in
    place; they are served until `stale_after_s` after they were fetched, and after that
    `rate` raises `RatesUnavailable`. Before any good rates, `rate` raises the refresh's own
    error (`RatesUnavailable` or `InvalidRates`). Safe to share between threads: one refresh
    at a time, and every call sees one whole document.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl_s: float = RATES_TTL_S,
        timeout_s: float = RATES_TIMEOUT_S,
        stale_after_s: float = RATES_STALE_AFTER_S,
        pairs: Iterable[str] = (),
        fetch: Fetch | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        if fetch is None and _scheme(url) not in ("http", "https"):
            raise ValueError(f"the rates URL must be http or https: {url!r}")
        if not ttl_s > 0:
            raise ValueError(f"ttl_s must be positive: {ttl_s!r}")
        if not 0 < timeout_s <= RATES_TIMEOUT_S_MAX:
            raise ValueError(f"timeout_s must be in (0, {RATES_TIMEOUT_S_MAX}]: {timeout_s!r}")
        if not stale_after_s >= ttl_s:
            raise ValueError(
                f"stale_after_s ({stale_after_s!r}) must be at least ttl_s ({ttl_s!r})"
            )
        self._pairs = tuple(_check_pair(pair) for pair in pairs)
        self._url = url
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._stale_after_s = stale_after_s
        self._retry_s = min(ttl_s, RATES_RETRY_S)
        self._fetch: Fetch = http_fetch if fetch is None else fetch
        self._now = now
        self._lock = threading.Lock()
        self._rates: StaticRates | None = None
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._failure: InvalidRates | RatesUnavailable | None = None

    @property
    def url(self) -> str:
        return self._url

    @property
    def as_of(self) -> str | None:
        """The `as_of` of the rates being served, as the source wrote it."""
        return None if self._rates is None else self._rates.as_of

    @property
    def fetched_at(self) -> float | None:
        """When (by the `now` clock) the rates being served were fetched; None before any."""
        return self._fetched_at

    @property
    def last_error(self) -> FundpoolError | None:
        """Why the last refresh failed, or None when it succeeded."""
        return self._failure

    def rate(self, base: str, quote: str) -> Fraction | None:
        return self.current().rate(base, quote)

    def current(self) -> StaticRates:
        """The rates to use now, refreshed when due: one document for several look-ups."""
        with self._lock:
            now = self._now()
            if self._refresh_due(now):
                self._attempt(now)
            return self._servable(now)

    def refresh(self) -> StaticRates:
        """Fetch now whatever the TTL, and raise a failure instead of serving older rates."""
        with self._lock:
            self._attempt(self._now())
            if self._failure is not None or self._rates is None:
                raise _again(self._failure)
            return self._rates

    def _refresh_due(self, now: float) -> bool:
        if self._attempted_at is None or now < self._attempted_at:
            return True  # never tried, or the clock went back: the age is not known
        if self._failure is not None:
            return now - self._attempted_at >= self._retry_s
        return self._fetched_at is None or now - self._fetched_at >= self._ttl_s

    def _attempt(self, now: float) -> None:
        self._attempted_at = now
        try:
            body = self._fetch(self._url, self._timeout_s, RATES_RESPONSE_BYTES_MAX)
            rates = rates_from_json(body, self._url)
            for pair in self._pairs:
                base, _, quote = pair.partition("/")
                if rates.rate(base, quote) is None:
                    raise InvalidRates("the rates lack a pair this source must carry",
                                       source=self._url, pair=pair)
        except (InvalidRates, RatesUnavailable) as error:
            self._failure = error
            return
        except OSError as error:
            self._failure = RatesUnavailable(f"the rates could not be read: {error}",
                                             url=self._url)
            return
        self._rates, self._fetched_at, self._failure = rates, now, None

    def _servable(self, now: float) -> StaticRates:
        if self._rates is not None and self._fetched_at is not None:
            age_s = now - self._fetched_at
            if 0 <= age_s < self._stale_after_s:
                return self._rates
            failure = self._failure
            raise RatesUnavailable(
                "the last good rates are too old to use and the source cannot be refreshed",
                url=self._url,
                as_of=self._rates.as_of,
                fetched_at=self._fetched_at,
                age_s=age_s,
                stale_after_s=self._stale_after_s,
                reason=None if failure is None else failure.code,
                reason_detail=None if failure is None else failure.detail,
            )
        raise _again(self._failure)


def _check_pair(pair: str) -> str:
    base, slash, quote = pair.partition("/")
    if not (slash and ASSET_CODE_PATTERN.match(base) and ASSET_CODE_PATTERN.match(quote)):
        raise ValueError(f"a pair is written BASE/QUOTE: {pair!r}")
    return pair


def _scheme(url: str) -> str:
    try:
        return httpx.URL(url).scheme
    except httpx.InvalidURL:
        return ""


def _too_large(source: str, bytes_max: int) -> InvalidRates:
    return InvalidRates("the rates response is too large", source=source, bytes_max=bytes_max)


def _again(error: InvalidRates | RatesUnavailable | None) -> FundpoolError:
    # A new instance per raise: raising one stored instance again and again would grow its
    # traceback with every call.
    if error is None:
        return InvariantViolation("the rate source has neither rates nor a failure")
    return type(error)(error.detail, **error.facts)


def convert_minor(amount_minor: int, source: Asset, target: Asset, rate: Fraction) -> int:
    """`amount_minor` of `source` in minor units of `target`, rounded half to even."""
    return round_half_even(_exact(amount_minor, source, target, rate))


def convert_parts(
    parts: Sequence[int], source: Asset, target: Asset, rate: Fraction
) -> tuple[list[int], int]:
    """Convert a total made of non-negative `parts`: the total once, rounded half to even, then
    shared out to the parts by largest remainder, so the converted parts add up to exactly the
    converted total (docs/adr/0006)."""
    exact = [_exact(part, source, target, rate) for part in parts]
    total = round_half_even(sum(exact, Fraction(0)))
    floors = [value.numerator // value.denominator for value in exact]
    leftover = total - sum(floors)
    # Largest fractional part first; ties go to the earlier part, so the result is stable.
    order = sorted(range(len(parts)), key=lambda i: (-(exact[i] - floors[i]), i))
    for index in order[:leftover]:
        floors[index] += 1
    return floors, total


def round_half_even(value: Fraction) -> int:
    quotient, remainder = divmod(value.numerator, value.denominator)
    twice = 2 * remainder
    if twice > value.denominator or (twice == value.denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def _exact(amount_minor: int, source: Asset, target: Asset, rate: Fraction) -> Fraction:
    target_unit: int = 10**target.scale
    source_unit: int = 10**source.scale
    return Fraction(amount_minor * target_unit, source_unit) * rate
