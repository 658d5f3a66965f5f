"""Rates over HTTP, against a real HTTP server on 127.0.0.1: good rates are kept for the TTL
and refreshed after it; a failed refresh serves the last good rates until they are stale and
then refuses; anything that is not rates as decimal text is refused."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fundpool.core.money import Asset, AssetKind
from fundpool.pool.rates import (
    RATES_RESPONSE_BYTES_MAX,
    HttpRates,
    InvalidRates,
    RateSource,
    RatesUnavailable,
    convert_minor,
)

GOOD = {"as_of": "2026-12-07T10:00:00Z", "rates": {"EUR/USD": "1.0843", "ETH/USD": "3120.55"}}
LATER = {"as_of": "2026-12-07T10:01:00Z", "rates": {"EUR/USD": "1.1", "ETH/USD": "3200"}}


@dataclass
class Reply:
    """What the server answers next; the test changes it between calls."""

    status: int = 200
    body: bytes = b""
    declare_length: bool = True
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    requests: int = 0


class RatesServer:
    def __init__(self) -> None:
        self.reply = Reply(body=json.dumps(GOOD).encode())
        reply = self.reply

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                reply.requests += 1
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.declare_length:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                # The client may stop reading a body it refuses.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(reply.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/rates.json"
        # A short poll interval: shutdown() waits for the next poll, once per test.
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.02,), daemon=True
        )
        self.thread.start()
        self.running = True

    def answer(self, document: object | None = None, *, body: bytes | None = None,
               status: int = 200, declare_length: bool = True) -> None:
        self.reply.status = status
        self.reply.body = body if body is not None else json.dumps(document).encode()
        self.reply.declare_length = declare_length

    def stop(self) -> None:
        if self.running:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=5)
            self.running = False


class Clock:
    def __init__(self, start_s: float = 1_800_000_000.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


@pytest.fixture
def server() -> Iterator[RatesServer]:
    running = RatesServer()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def source(server: RatesServer, clock: Clock, **options: object) -> HttpRates:
    return HttpRates(server.url, now=clock, **options)  # type: ignore[arg-type]


# --- good rates ----------------------------------------------------------------------------------


def test_good_rates_are_exact_fractions_with_their_as_of(
    server: RatesServer, clock: Clock
) -> None:
    rates = source(server, clock)
    assert rates.as_of is None
    assert rates.fetched_at is None
    assert server.reply.requests == 0
    rate = rates.rate("EUR", "USD")
    assert isinstance(rate, Fraction)
    assert rate == Fraction(10843, 10000)
    assert rates.rate("USD", "EUR") == Fraction(10000, 10843)
    assert rates.rate("ETH", "USD") == Fraction(312055, 100)
    assert rates.rate("EUR", "ETH") is None  # never chained through USD
    assert rates.rate("GBP", "GBP") == 1
    assert rates.as_of == "2026-12-07T10:00:00Z"
    assert rates.fetched_at == clock.now_s
    assert rates.last_error is None
    assert server.reply.requests == 1  # one document for all of those look-ups


def test_it_is_a_rate_source_for_the_exact_conversion(server: RatesServer, clock: Clock) -> None:
    rates: RateSource = source(server, clock)
    eur, usd = Asset("EUR", 2, AssetKind.FIAT), Asset("USD", 2, AssetKind.FIAT)
    rate = rates.rate("EUR", "USD")
    assert rate is not None
    assert convert_minor(100_000, eur, usd, rate) == 108_430


def test_rates_are_kept_for_the_ttl_and_refreshed_after_it(
    server: RatesServer, clock: Clock
) -> None:
    rates = source(server, clock, ttl_s=60)
    assert rates.rate("EUR", "USD") == Fraction("1.0843")
    server.answer(LATER)
    clock.advance(59.9)
    assert rates.rate("EUR", "USD") == Fraction("1.0843")  # still within the TTL
    assert server.reply.requests == 1
    clock.advance(0.1)
    assert rates.rate("EUR", "USD") == Fraction("1.1")
    assert rates.as_of == "2026-12-07T10:01:00Z"
    assert rates.fetched_at == clock.now_s
    assert server.reply.requests == 2


def test_a_clock_that_goes_back_forces_a_refresh(server: RatesServer, clock: Clock) -> None:
    rates = source(server, clock)
    rates.rate("EUR", "USD")
    clock.advance(-3600)
    server.answer(LATER)
    assert rates.rate("EUR", "USD") == Fraction("1.1")


def test_refresh_fetches_whatever_the_ttl(server: RatesServer, clock: Clock) -> None:
    rates = source(server, clock)
    rates.rate("EUR", "USD")
    server.answer(LATER)
    assert rates.refresh().rate("EUR", "USD") == Fraction("1.1")
    assert server.reply.requests == 2


# --- failures: last good rates until stale, then refused --------------------------------------


def test_a_server_that_goes_down_serves_the_last_good_rates_until_they_are_stale(
    server: RatesServer, clock: Clock
) -> None:
    rates = source(server, clock, ttl_s=60, stale_after_s=300)
    assert rates.rate("EUR", "USD") == Fraction("1.0843")
    fetched_at = rates.fetched_at
    server.stop()
    clock.advance(60)
    assert rates.rate("EUR", "USD") == Fraction("1.0843")  # refresh failed: last good rates
    error = rates.last_error
    assert isinstance(error, RatesUnavailable)
    assert rates.fetched_at == fetched_at
    assert rates.as_of == "2026-12-07T10:00:00Z"
    clock.advance(239.9)  # 299.9 s after the fetch
    assert rates.rate("EUR", "USD") == Fraction("1.0843")
    clock.advance(0.1)  # 300 s: stale
    with pytest.raises(RatesUnavailable) as caught:
        rates.rate("EUR", "USD")
    assert caught.value.code == "rates_unavailable"
    facts = caught.value.facts
    assert facts["url"] == server.url
    assert facts["as_of"] == "2026-12-07T10:00:00Z"
    assert facts["age_s"] == 300
    assert facts["stale_after_s"] == 300
    assert facts["reason"] == "rates_unavailable"
    with pytest.raises(RatesUnavailable):
        rates.current()  # and again, every time, not only once


def test_a_failing_server_is_retried_at_an_interval_and_recovers(
    server: RatesServer, clock: Clock
) -> None:
    rates = source(server, clock, ttl_s=60, stale_after_s=300)
    rates.rate("EUR", "USD")
    server.answer(body=b"busy", status=503)
    clock.advance(60)
    for _ in range(5):
        assert rates.rate("EUR", "USD") == Fraction("1.0843")
    assert server.reply.requests == 2  # one failed refresh, not one per look-up
    error = rates.last_error
    assert isinstance(error, RatesUnavailable)
    assert error.facts["status"] == 503
    clock.advance(5)  # RATES_RETRY_S
    rates.rate("EUR", "USD")
    assert server.reply.requests == 3
    clock.advance(300)  # stale and still failing
    with pytest.raises(RatesUnavailable):
        rates.rate("EUR", "USD")
    server.answer(LATER)
    clock.advance(5)
    assert rates.rate("EUR", "USD") == Fraction("1.1")
    assert rates.last_error is None


def test_a_source_that_never_answered_is_unavailable(clock: Clock) -> None:
    down = RatesServer()
    down.stop()  # the port was ours a moment ago and nobody listens on it now
    rates = HttpRates(down.url, now=clock)
    with pytest.raises(RatesUnavailable) as caught:
        rates.rate("EUR", "USD")
    assert caught.value.facts["url"] == down.url
    with pytest.raises(RatesUnavailable):
        rates.refresh()


@pytest.mark.parametrize("status", [301, 404, 500])
def test_an_answer_other_than_200_is_a_failed_refresh(
    server: RatesServer, clock: Clock, status: int
) -> None:
    server.answer(GOOD, status=status)
    server.reply.headers = {"Location": server.url} if status == 301 else {}
    with pytest.raises(RatesUnavailable) as caught:
        source(server, clock).rate("EUR", "USD")
    assert caught.value.facts["status"] == status


def test_a_server_slower_than_the_timeout_is_a_failed_refresh(
    server: RatesServer, clock: Clock
) -> None:
    server.reply.delay_s = 1.0
    started = time.monotonic()
    with pytest.raises(RatesUnavailable):
        source(server, clock, timeout_s=0.2).rate("EUR", "USD")
    assert time.monotonic() - started < 1.0


def test_a_bad_answer_after_good_rates_keeps_the_good_ones(
    server: RatesServer, clock: Clock
) -> None:
    rates = source(server, clock, ttl_s=60, stale_after_s=120)
    rates.rate("EUR", "USD")
    server.answer({"rates": {"EUR/USD": 1.2}})
    clock.advance(60)
    assert rates.rate("EUR", "USD") == Fraction("1.0843")
    error = rates.last_error
    assert isinstance(error, InvalidRates)
    assert error.facts["pair"] == "EUR/USD"
    clock.advance(60)
    with pytest.raises(RatesUnavailable) as caught:
        rates.rate("EUR", "USD")
    assert caught.value.facts["reason"] == "invalid_rates"
    with pytest.raises(InvalidRates):
        rates.refresh()  # asked for directly, the cause itself


# --- what is not rates ---------------------------------------------------------------------------


def refused(server: RatesServer, clock: Clock, **options: object) -> InvalidRates:
    with pytest.raises(InvalidRates) as caught:
        source(server, clock, **options).rate("EUR", "USD")
    assert caught.value.code == "invalid_rates"
    assert caught.value.facts["source"] == server.url
    return caught.value


@pytest.mark.parametrize(
    "body", [b"", b"not json", b'{"rates": {"EUR/USD": "1.0843"}', b"\xff\xfe{}", b"[" * 100_000]
)
def test_a_body_that_is_not_json_is_refused(
    server: RatesServer, clock: Clock, body: bytes
) -> None:
    server.answer(body=body)
    refused(server, clock)


@pytest.mark.parametrize(
    "document",
    [
        [],
        ["EUR/USD", "1.0843"],
        "EUR/USD=1.0843",
        {},
        {"as_of": "2026-12-07T10:00:00Z"},
        {"rates": {}},
        {"rates": ["EUR/USD", "1.0843"]},
        {"rates": "EUR/USD=1.0843"},
        {"as_of": 20261207, "rates": {"EUR/USD": "1.0843"}},
        {"rates": {"EURUSD": "1.0843"}},
        {"rates": {"EUR/USD": "0"}},
        {"rates": {"EUR/USD": "1e3"}},
    ],
)
def test_a_document_of_the_wrong_shape_is_refused(
    server: RatesServer, clock: Clock, document: object
) -> None:
    server.answer(document)
    refused(server, clock)


@pytest.mark.parametrize("number", [b"1.0843", b"1", b"1e0", b"NaN", b"Infinity", b"1" * 5000])
def test_a_rate_as_a_json_number_is_refused(
    server: RatesServer, clock: Clock, number: bytes
) -> None:
    server.answer(body=b'{"as_of": "2026-12-07T10:00:00Z", "rates": {"EUR/USD": ' + number + b"}}")
    error = refused(server, clock)
    if number != b"1" * 5000:  # too long an integer is refused by the parser already
        assert error.facts["pair"] == "EUR/USD"
        assert "never a float" in error.detail


def too_large_document() -> bytes:
    padding = "x" * RATES_RESPONSE_BYTES_MAX
    return json.dumps({**GOOD, "padding": padding}).encode()


def test_a_response_declared_too_large_is_refused(server: RatesServer, clock: Clock) -> None:
    server.answer(body=too_large_document())
    error = refused(server, clock)
    assert error.facts["bytes_max"] == RATES_RESPONSE_BYTES_MAX


def test_a_response_too_large_is_refused_as_it_streams(server: RatesServer, clock: Clock) -> None:
    server.answer(body=too_large_document(), declare_length=False)
    error = refused(server, clock)
    assert error.facts["bytes_max"] == RATES_RESPONSE_BYTES_MAX


def test_a_response_just_inside_the_bound_is_read(server: RatesServer, clock: Clock) -> None:
    body = json.dumps(GOOD).encode()
    padding = RATES_RESPONSE_BYTES_MAX - len(body) - len(', "padding": ""')
    document = json.dumps({**GOOD, "padding": "x" * padding}).encode()
    assert len(document) == RATES_RESPONSE_BYTES_MAX
    server.answer(body=document, declare_length=False)
    assert source(server, clock).rate("EUR", "USD") == Fraction("1.0843")


def test_unknown_keys_are_ignored(server: RatesServer, clock: Clock) -> None:
    server.answer({**GOOD, "provider": "ecb", "version": 2})
    assert source(server, clock).rate("EUR", "USD") == Fraction("1.0843")


def test_rates_missing_a_required_pair_are_refused(server: RatesServer, clock: Clock) -> None:
    assert source(server, clock, pairs=["USD/EUR", "ETH/USD"]).rate("EUR", "USD") is not None
    error = refused(server, clock, pairs=["EUR/USD", "GBP/USD"])
    assert error.facts["pair"] == "GBP/USD"


@pytest.mark.parametrize(
    "options",
    [
        {"ttl_s": 0},
        {"ttl_s": -1},
        {"timeout_s": 0},
        {"timeout_s": 61},
        {"ttl_s": 60, "stale_after_s": 59},
        {"pairs": ["EURUSD"]},
        {"pairs": ["eur/usd"]},
    ],
)
def test_a_bad_configuration_is_refused_at_once(options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"must|pair"):
        HttpRates("http://127.0.0.1:1/rates.json", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["file:///etc/rates.json", "ftp://host/rates", "rates.json"])
def test_only_http_urls_are_read_by_the_default_fetch(url: str) -> None:
    with pytest.raises(ValueError, match="http or https"):
        HttpRates(url)
