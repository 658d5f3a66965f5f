"""Risk policies: what is refused (with the line at fault), and each rule kind firing exactly
when it should and not otherwise; the decision is a pure function of its inputs."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.risk.features import Features, Seen
from fundpool.risk.policy import InvalidPolicy, Outcome, parse_policy
from fundpool.risk.rules import Party, Subject, Verdict, decide

SCALES = {"USD": 2, "EUR": 2, "ETH": 18}
T0 = 1_767_225_600_000_000
S = 1_000_000
NOW = T0 + 43_200 * S  # noon: the day totals below are of one day


def policy(groups: str, *, thresholds: str = "{review: 30, hold: 60, block: 90}",
           lists: str = "") -> str:
    return (f"thresholds: {thresholds}\n" + (f"lists:\n{textwrap.indent(lists, '  ')}\n"
                                              if lists else "")
            + "groups:\n" + textwrap.indent(textwrap.dedent(groups), "  "))


# --- refusals ------------------------------------------------------------------------------


REFUSED = [
    ("unknown field in a group", policy("""\
        - name: g
          when: [{new_payee: {}}]
          score: 40
          colour: red
        """), 6, "unknown field 'colour'"),
    ("unknown condition kind", policy("""\
        - name: g
          when:
            - moon_phase: {full: true}
          score: 40
        """), 5, "unknown field 'moon_phase'"),
    ("two kinds in one condition", policy("""\
        - name: g
          when:
            - {new_payee: {}, duplicate: {window: 1h}}
          score: 40
        """), 5, "exactly one"),
    ("thresholds out of order", policy("""\
        - name: g
          when: [{new_payee: {}}]
          score: 40
        """, thresholds="{review: 50, hold: 40, block: 90}"), 1, "must rise"),
    ("score and outcome", policy("""\
        - name: g
          when: [{new_payee: {}}]
          score: 40
          outcome: block
        """), 3, "not both"),
    ("contradictory amounts", policy("""\
        - name: g
          when:
            - amount: {over: {USD: "5000.00"}}
            - amount: {under: {USD: "1000.00"}}
          score: 40
        """), 3, "no amount is both"),
    ("disjoint asset filters", policy("""\
        - name: g
          when:
            - payment: {assets: [USD]}
            - payment: {assets: [EUR]}
          score: 40
        """), 3, "nothing in common"),
    ("the same conditions twice", policy("""\
        - name: a
          when: [{new_payee: {}}]
          score: 40
        - name: b
          when: [{new_payee: {}}]
          score: 10
        """), 6, "same conditions"),
    ("an undefined list", policy("""\
        - name: g
          when: [{listed: {field: payee, list: nope}}]
          outcome: block
        """), 3, "does not define"),
    ("scores that never reach review", policy("""\
        - name: g
          when: [{new_payee: {}}]
          score: 10
        """), 1, "never reach"),
    ("a bad window", policy("""\
        - name: g
          when: [{velocity: {per: payee, window: 10 weeks, count_over: 3}}]
          score: 40
        """), 4, "duration"),
    ("an asset the pool lacks", policy("""\
        - name: g
          when: [{amount: {over: {XYZ: "1.00"}}}]
          score: 40
        """), 4, "not an asset"),
    ("too many decimals", policy("""\
        - name: g
          when: [{amount: {over: {USD: "1.001"}}}]
          score: 40
        """), 4, "USD"),
    ("not YAML", "thresholds: {review: 1\ngroups: [", 2, "not YAML"),
    ("an alias", "lists:\n  a: &x [p, q]\n  b: *x\n" + policy("""\
        - name: g
          when: [{new_payee: {}}]
          score: 40
        """).split("\n", 1)[1].replace("groups", "thresholds: {review: 30, hold: 60, "
                                        "block: 90}\ngroups", 1), 3, "aliases"),
    ("empty", "   \n", 1, "empty"),
    ("a list, not a mapping", "- a\n- b\n", 1, "mapping"),
]


@pytest.mark.parametrize(("case", "text", "line", "says"), REFUSED,
                         ids=[c[0] for c in REFUSED])
def test_a_bad_policy_is_refused_with_the_line_at_fault(case: str, text: str, line: int,
                                                        says: str) -> None:
    with pytest.raises(InvalidPolicy) as refused:
        parse_policy(text, SCALES)
    assert says in refused.value.detail, refused.value.detail
    assert refused.value.facts.get("line") == line, (case, refused.value.facts)


def test_a_small_amount_and_a_large_day_total_are_not_a_contradiction() -> None:
    parsed = parse_policy(policy("""\
        - name: structuring
          when:
            - amount: {under: {USD: "1000.00"}}
            - daily_total: {per: payee, over: {USD: "9000.00"}}
          score: 40
        """), SCALES)
    assert parsed.document.groups[0].name == "structuring"


def test_a_good_policy_parses_with_exact_amounts() -> None:
    parsed = parse_policy(policy("""\
        - name: large
          when: [{amount: {over: {USD: "5000.00", ETH: "1.5"}}}]
          score: 40
        """), SCALES)
    assert parsed.amounts[(0, 0, "over")] == {"USD": 500_000, "ETH": 1_500_000_000_000_000_000}


# --- each rule kind, table-driven ----------------------------------------------------------


def subject(**changes: Any) -> Subject:
    base = Subject("p-1", "payout", "USD", 100_00, NOW, None, "Ada", "ACCT-1", "ref-1",
                   "user:u-cashier", None)
    return replace(base, **changes)


def history(*seen: Seen, windows: frozenset[int] = frozenset({600 * S})) -> Features:
    features = Features(windows)
    for item in seen:
        features.observe(item, learn=True)
    return features


def paid(at_us: int, amount: int = 100_00, payee: str = "Ada", destination: str = "ACCT-1",
         reference: str = "ref-0") -> Seen:
    return Seen(at_us, "payout", "USD", amount, payee, "user:u-cashier", destination,
                reference)


ONE_RULE = [
    # (rule, subject changes, history, party, fires)
    ("amount: {over: {USD: '50.00'}}", {}, (), Party(), True),
    ("amount: {over: {USD: '100.00'}}", {}, (), Party(), False),  # exactly 100.00: not over
    ("amount: {under: {USD: '100.01'}}", {}, (), Party(), True),
    ("amount: {over: {EUR: '1.00'}}", {}, (), Party(), False),  # no USD limit: not for USD
    ("round_amount: {multiple: {USD: '100.00'}}", {"amount": 5_000_00}, (), Party(), True),
    ("round_amount: {multiple: {USD: '100.00'}}", {"amount": 5_000_01}, (), Party(), False),
    ("round_amount: {multiple: {EUR: '100.00'}}", {"amount": 5_000_00}, (), Party(), False),
    ("payment: {kinds: [payout], assets: [USD]}", {}, (), Party(), True),
    ("payment: {kinds: [deposit]}", {}, (), Party(), False),
    ("payment: {channels: [rtp]}", {"channel": "rtp"}, (), Party(), True),
    ("payment: {channels: [rtp]}", {}, (), Party(), False),
    ("daily_total: {per: payee, over: {USD: '250.00'}}", {},
     (paid(NOW - 10 * S), paid(NOW - 5 * S)), Party(), True),  # 300.00 today
    ("daily_total: {per: payee, over: {USD: '300.00'}}", {},
     (paid(NOW - 10 * S), paid(NOW - 5 * S)), Party(), False),
    ("velocity: {per: payee, window: 10m, count_over: 2}", {},
     (paid(NOW - 60 * S), paid(NOW - 30 * S)), Party(), True),  # third in 10 minutes
    ("velocity: {per: payee, window: 10m, count_over: 2}", {},
     (paid(NOW - 700 * S), paid(NOW - 30 * S)), Party(), False),  # one fell out of the window
    ("velocity: {per: payee, window: 10m, amount_over: {USD: '250.00'}}", {},
     (paid(NOW - 60 * S), paid(NOW - 30 * S)), Party(), True),
    ("velocity: {per: destination, window: 10m, count_over: 1}", {},
     (paid(NOW - 60 * S, payee="Bob"),), Party(), True),  # another payee, same account
    ("velocity: {per: channel, window: 10m, count_over: 1}", {"channel": "rtp"},
     (Seen(NOW - 60 * S, "payout", "USD", 10_00, "Bob", "user:y", "ACCT-2", "r", "rtp"),),
     Party(), True),
    ("daily_total: {per: channel, over: {USD: '150.00'}}", {"channel": "rtp"},
     (Seen(NOW - 60 * S, "payout", "USD", 100_00, "Bob", "user:y", "ACCT-2", "r", "rtp"),),
     Party(), True),
    ("daily_total: {per: channel, over: {USD: '150.00'}}", {},  # no rail named: no channel
     (Seen(NOW - 60 * S, "payout", "USD", 100_00, "Bob", "user:y", "ACCT-2", "r", "rtp"),),
     Party(), False),
    ("velocity: {per: initiator, window: 10m, count_over: 1}", {"initiator": "user:x"},
     (paid(NOW - 60 * S),), Party(), False),
    ("duplicate: {window: 1h}", {}, (paid(NOW - 60 * S, reference="ref-1"),), Party(), True),
    ("duplicate: {window: 1h}", {}, (paid(NOW - 60 * S, reference="ref-2"),), Party(), False),
    ("duplicate: {window: 1h}", {}, (paid(NOW - 3_700 * S, reference="ref-1"),), Party(),
     False),
    ("new_payee: {}", {}, (), Party(), True),
    ("new_payee: {}", {}, (paid(NOW - 60 * S),), Party(), False),
    ("destination_changed: {within: 7d}", {"destination": "ACCT-2"}, (paid(NOW - 60 * S),),
     Party(), True),
    ("destination_changed: {within: 7d}", {}, (paid(NOW - 60 * S),), Party(), False),
    ("destination_changed: {within: 7d}", {},
     (paid(NOW - 9 * 86_400 * S, destination="ACCT-0"), paid(NOW - 86_400 * S)), Party(), True),
    ("abnormal_amount: {times: 5, min_history: 2}", {"amount": 600_00},
     (paid(NOW - 60 * S), paid(NOW - 30 * S)), Party(), True),
    ("abnormal_amount: {times: 5, min_history: 2}", {"amount": 500_00},
     (paid(NOW - 60 * S), paid(NOW - 30 * S)), Party(), False),
    ("abnormal_amount: {times: 5, min_history: 3}", {"amount": 600_00},
     (paid(NOW - 60 * S), paid(NOW - 30 * S)), Party(), False),  # too little history
    ("listed: {field: payee, list: blocked}", {"payee": " ada "}, (), Party(), True),
    ("listed: {field: payee, list: blocked}", {"payee": "Bob"}, (), Party(), False),
    ("listed: {field: payee, list: blocked, absent: true}", {"payee": "Bob"}, (), Party(),
     True),
    ("listed: {field: country, list: countries}", {"country": "kp"}, (), Party(), True),
    ("ring: {min_payees: 3}", {"payee": "Cy", "destination": "ACCT-9"},
     (paid(NOW - 60 * S, payee="Ann", destination="ACCT-9"),
      paid(NOW - 30 * S, payee="Bo", destination="ACCT-9")), Party(), True),
    ("ring: {min_payees: 3}", {"payee": "Cy", "destination": "ACCT-9"},
     (paid(NOW - 60 * S, payee="Ann", destination="ACCT-9"),), Party(), False),
    ("ring: {min_payees: 4}", {"payee": "Di", "destination": "ACCT-7"},
     (paid(NOW - 90 * S, payee="Ann", destination="ACCT-9"),  # Ann, Bo share ACCT-9,
      paid(NOW - 60 * S, payee="Bo", destination="ACCT-9"),   # Bo and Cy ACCT-7:
      paid(NOW - 30 * S, payee="Bo", destination="ACCT-7"),   # Di joins four
      paid(NOW - 20 * S, payee="Cy", destination="ACCT-7")), Party(), True),
    ("kyc: {states: [none, pending]}", {}, (), Party("pending"), True),
    ("kyc: {states: [none, pending]}", {}, (), Party("verified"), False),
    ("jurisdiction: {countries: [IR, KP]}", {}, (), Party("verified", "ir"), True),
    ("jurisdiction: {countries: [IR, KP]}", {"country": "KP"}, (), Party(), True),
    ("jurisdiction: {countries: [IR, KP]}", {}, (), Party("verified", "GB"), False),
]


@pytest.mark.parametrize(("rule", "changes", "seen", "party", "fires"), ONE_RULE,
                         ids=[f"{i}:{c[0]}" for i, c in enumerate(ONE_RULE)])
def test_each_rule_fires_exactly_when_it_should(rule: str, changes: dict[str, Any],
                                               seen: tuple[Seen, ...], party: Party,
                                               fires: bool) -> None:
    parsed = parse_policy(policy(f"""\
        - name: the rule
          when:
            - {rule}
          score: 40
        """, lists="blocked: [Ada, Mallory]\ncountries: [KP]"), SCALES)
    verdict = decide(parsed, subject(**changes), history(*seen), party, ())
    assert (verdict.outcome is Outcome.REVIEW) is fires, verdict
    if fires:
        (fired,) = verdict.fired
        assert fired.group == "the rule"
        assert fired.conditions[0]["kind"] == rule.split(":")[0]


class FakeHit:
    def __init__(self, score: int) -> None:
        self.entry_id, self.source, self.matched_name = "e-1", "synthetic", "Viktor Sanctionov"
        self.score, self.explanation = score, "2 of 2 tokens"


@pytest.mark.parametrize(("score", "fires"), [(90, True), (85, True), (84, False)])
def test_sanctions_fires_at_its_threshold(score: int, fires: bool) -> None:
    parsed = parse_policy(policy("""\
        - name: sanctioned
          when: [{sanctions: {threshold: 85}}]
          outcome: block
        """), SCALES)
    verdict = decide(parsed, subject(), history(), Party(), [FakeHit(score)])
    assert (verdict.outcome is Outcome.BLOCK) is fires
    if fires:
        assert verdict.fired[0].conditions[0]["explanation"] == "2 of 2 tokens"


def test_and_within_a_group_or_across_groups_scores_add_and_block_wins() -> None:
    parsed = parse_policy(policy("""\
        - name: new and large
          when: [{new_payee: {}}, {amount: {over: {USD: "50.00"}}}]
          score: 35
        - name: new
          when: [{new_payee: {}}]
          score: 30
        - name: trusted
          when: [{listed: {field: payee, list: trusted}}]
          outcome: allow
        - name: blocked
          when: [{listed: {field: payee, list: blocked}}]
          outcome: block
        """, lists="trusted: [Ada, Mallory]\nblocked: [Mallory]"), SCALES)

    def outcome(**changes: Any) -> Verdict:
        return decide(parsed, subject(**changes), history(), Party(), ())

    assert outcome(payee="Zed").outcome is Outcome.HOLD  # 35 + 30 = 65 >= hold
    assert outcome(payee="Zed").score == 65
    assert outcome(payee="Zed", amount=10_00).outcome is Outcome.REVIEW  # 30 only
    assert outcome(payee="Ada").outcome is Outcome.ALLOW  # the allow-list clears a hold
    assert outcome(payee="Mallory").outcome is Outcome.BLOCK  # never a block
    assert "blocked" in outcome(payee="Mallory").reason


# --- determinism ---------------------------------------------------------------------------

PAYMENTS = st.lists(st.tuples(st.integers(0, 3_600), st.sampled_from(["Ada", "Bob", "Cy"]),
                              st.integers(1, 10_000_00), st.sampled_from(["r1", "r2"])),
                    max_size=40)
DETERMINISM = policy("""\
    - name: burst
      when: [{velocity: {per: payee, window: 10m, count_over: 3}}]
      score: 40
    - name: dup
      when: [{duplicate: {window: 30m}}]
      score: 30
    - name: new and large
      when: [{new_payee: {}}, {amount: {over: {USD: "5000.00"}}}]
      score: 60
    - name: abnormal
      when: [{abnormal_amount: {times: 4, min_history: 2}}]
      score: 30
    """)


@settings(max_examples=60, deadline=None)
@given(PAYMENTS)
def test_the_decision_is_deterministic_for_the_same_inputs(payments: list[Any]) -> None:
    parsed = parse_policy(DETERMINISM, SCALES)

    def run() -> list[tuple[str, int, tuple[str, ...]]]:
        features = Features(parsed.windows)
        out = []
        for at, payee, amount, reference in sorted(payments):
            s = subject(at_us=T0 + at * S, payee=payee, amount=amount, reference=reference)
            verdict = decide(parsed, s, features, Party(), ())
            features.observe(Seen(s.at_us, s.kind, s.asset, s.amount, s.payee, s.initiator,
                                  s.destination, s.reference),
                             learn=verdict.outcome is not Outcome.BLOCK)
            out.append((verdict.outcome.value, verdict.score,
                        tuple(f.group for f in verdict.fired)))
        return out

    assert run() == run()


@pytest.mark.parametrize(("score", "fires"), [(0.97, True), (0.95, False), (None, False)])
def test_the_anomaly_condition_reads_the_models_score(score: float | None, fires: bool) -> None:
    parsed = parse_policy(policy("""\
        - name: unusual
          when: [{anomaly: {score_over: 0.95}}]
          score: 40
        """), SCALES)
    verdict = decide(parsed, subject(), history(), Party(), (), score)
    assert (verdict.outcome is Outcome.REVIEW) is fires
    assert verdict.anomaly == score


def test_the_anomaly_model_warms_up_then_scores_the_unusual_higher() -> None:
    import random

    from fundpool.risk.anomaly import WARM_UP, AnomalyModel, anomaly_features

    rng = random.Random(3)
    features = Features(frozenset({600 * S}))
    model = AnomalyModel()
    at = NOW
    for i in range(WARM_UP + 1_500):
        payee = f"payee-{rng.randrange(50)}"
        s = subject(payee=payee, amount=rng.randrange(20_00, 200_00), at_us=at,
                    reference=f"r{i}")
        x = anomaly_features(s, features, SCALES)
        if i < WARM_UP:
            assert model.score(x) is None  # no score while it warms up
        model.learn(x)
        features.observe(Seen(at, "payout", "USD", s.amount, payee, s.initiator,
                              s.destination, s.reference), learn=True)
        at += 20 * S
    ordinary = [model.score(anomaly_features(
        subject(payee=f"payee-{rng.randrange(50)}", amount=rng.randrange(20_00, 200_00),
                at_us=at), features, SCALES)) for _ in range(50)]
    unusual = [model.score(anomaly_features(
        subject(payee=f"stranger-{i}", amount=rng.randrange(40_000_00, 90_000_00), at_us=at),
        features, SCALES)) for i in range(50)]
    assert all(o is not None for o in ordinary + unusual)
    assert sorted(unusual)[25] > sorted(ordinary)[45]  # the median unusual above ordinary p90
