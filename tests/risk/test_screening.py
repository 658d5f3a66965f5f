"""Sanctions screening: names in any script, the two list formats and their refusals, the
screener's hits and misses, the allow-list, and properties over arbitrary text."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.core.errors import FundpoolError
from fundpool.risk.screening import (
    InvalidSanctionsFile,
    InvalidScreeningRequest,
    ListEntry,
    Screener,
    generate,
    load_file,
    normalised,
    parse_ftm,
    parse_sdn,
    tokens,
)
from fundpool.risk.screening.names import NAME_CHARS_MAX, TOKEN_CHARS_MAX, TOKENS_MAX

DATA = Path(str(resources.files("fundpool.risk.screening").joinpath("data")))
FTM = DATA / "synthetic.ftm.json"
SDN = DATA / "synthetic_sdn.csv"
SDN_ROW = '9001,"SANCTIONOV, Viktor",individual,"SYNTH-DEMO"' + ",-0- " * 8 + "\n"
FTM_LINE = FTM.read_text(encoding="utf-8").splitlines()[0]


@functools.cache
def shipped_screener() -> Screener:
    return Screener(load_file(FTM).entries)


@pytest.fixture
def screener() -> Screener:
    return shipped_screener()


def entry(entry_id: str, *names: str, schema: str = "Person") -> ListEntry:
    return ListEntry(
        id=entry_id, source="test", schema=schema, names=names, countries=(), programs=()
    )


# --- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Vladimir Putin", ("vladimir", "putin")),
        ("Владимир Путин", ("vladimir", "putin")),
        ("习近平", ("xi", "jin", "ping")),  # one token per character, not "xijinping"
        ("习近平先生", ("xi", "jin", "ping")),  # the honorific after the name, no space
        ("김정은", ("gim", "jeong", "eun")),
        ("やまだ たろう", ("yamada", "tarou")),  # kana runs stay words
        ("أسامة بن لادن", ("smh", "bn", "ldn")),  # what anyascii makes of Arabic: consonants
        ("Αριστείδης", ("aristeidis",)),
        ("Mr. Ivan Petrov", ("ivan", "petrov")),
        ("Sheikh Haji Dr. Ali", ("ali",)),
        ("Blocked Trading LLC", ("blocked", "trading")),
        ("ООО Рога и Копыта", ("roga", "i", "kopyta")),
        ("LLC", ("llc",)),  # only noise: kept, or nothing would be screened
        ("O'Brien-Smith", ("obrien", "smith")),
        ("Ñúñez  Gómez", ("nunez", "gomez")),
        ("Ｖｌａｄｉｍｉｒ", ("vladimir",)),  # full-width letters, NFKC
        ("Straße", ("strasse",)),
        ("Ivan\x00Petrov\u200b", ("ivan", "petrov")),  # control characters separate
        ("Ivan 冼栖鹤 Петров", ("ivan", "xian", "qi", "he", "petrov")),  # mixed scripts
        ("", ()),
        ("   ", ()),
        ("\x00\x01\x1f\x7f", ()),
        ("!!! ... ---", ()),
    ],
)
def test_tokens(name: str, expected: tuple[str, ...]) -> None:
    assert tokens(name) == expected


def test_long_names_are_bounded() -> None:
    assert tokens("x" * 10_000) == ("x" * TOKEN_CHARS_MAX,)
    many = tokens(" ".join(f"w{i}" for i in range(5_000)))
    assert len(many) == TOKENS_MAX
    # Only the first NAME_CHARS_MAX characters are read: what follows never changes tokens.
    head = "Ivan Petrov " * 50
    assert tokens(head[:NAME_CHARS_MAX] + "Sanctionov" * 1_000) == tokens(head[:NAME_CHARS_MAX])
    assert len(tokens("ﷺ" * 10_000)) <= TOKENS_MAX  # NFKC expands it eighteen-fold


def test_normalised_is_idempotent() -> None:
    for name in ("Mr. Ivan Petrov", "习近平", "LLC", "", "Виктор Санкционов"):
        assert normalised(normalised(name)) == normalised(name)


# --- lists ---------------------------------------------------------------------------------------


def test_the_shipped_ftm_list_loads_its_parties_and_skips_the_rest() -> None:
    loaded = load_file(FTM)
    assert len(loaded.entries) == 25
    assert {e.schema for e in loaded.entries} == {
        "Person",
        "Organization",
        "Company",
        "LegalEntity",
        "PublicBody",
    }
    assert len(loaded.version) == 64
    viktor = next(e for e in loaded.entries if e.id == "synth-viktor-sanctionov")
    assert viktor.names[0] == "Viktor Sanctionov"
    assert "Виктор Петрович Санкционов" in viktor.names
    assert viktor.programs == ("SYNTH-DEMO",)
    assert viktor.countries == ("ru",)
    blocked = next(e for e in loaded.entries if e.names[0] == "Blocked Trading LLC")
    assert blocked.schema == "Organization"


def test_the_shipped_sdn_list_loads_its_parties_and_skips_vessels_and_aircraft() -> None:
    loaded = load_file(SDN)
    assert len(loaded.entries) == 18
    by_id = {e.id: e for e in loaded.entries}
    assert "ofac-9008" not in by_id  # a vessel
    assert "ofac-9014" not in by_id  # an aircraft
    assert by_id["ofac-9001"].names == ("Viktor SANCTIONOV",)  # "LAST, First" turned round
    assert by_id["ofac-9001"].schema == "Person"
    assert by_id["ofac-9002"].schema == "Organization"
    assert by_id["ofac-9004"].programs == ("SYNTH-B", "SYNTH-DEMO")
    assert by_id["ofac-9012"].names == ("CRIMSON DELTA TRADING CO., LTD.",)


def test_sdn_aliases_come_from_alt_csv() -> None:
    sdn = SDN_ROW
    alt = '9001,1,"aka","SANKTSIONOV, Viktor Petrovich",-0- \n'
    loaded = parse_sdn(sdn, alt=alt)
    assert loaded.entries[0].names == ("Viktor SANCTIONOV", "Viktor Petrovich SANKTSIONOV")
    assert loaded.version != parse_sdn(sdn).version
    with pytest.raises(InvalidSanctionsFile) as refused:
        parse_sdn(sdn, alt='9999,1,"aka","SOMEONE",-0- \n')
    assert refused.value.facts == {"line": 1, "file": "alt", "ent_num": 9999}


def test_sdn_accepts_crlf_and_the_end_of_file_mark() -> None:
    sdn = SDN_ROW.replace("\n", "\r\n") + "\x1a"
    assert [e.id for e in parse_sdn(sdn).entries] == ["ofac-9001"]


def test_ftm_accepts_a_last_line_without_newline_when_it_parses() -> None:
    content = FTM.read_text(encoding="utf-8").rstrip("\n")
    assert len(parse_ftm(content).entries) == 25
    assert parse_ftm(content.encode()).version == parse_ftm(content).version


def test_load_file_recognises_the_format_by_content(tmp_path: Path) -> None:
    unnamed = tmp_path / "list.txt"
    unnamed.write_bytes(FTM.read_bytes())
    assert len(load_file(unnamed).entries) == 25
    unnamed.write_bytes(SDN.read_bytes())
    assert len(load_file(unnamed).entries) == 18


@pytest.mark.parametrize(
    ("content", "line", "what"),
    [
        (SDN_ROW + '9002,"BLOCKED TRADING LLC",-0- ,"SYNTH-DEMO"\n', 2, "wrong columns"),
        (SDN_ROW + 'x9,"BLOCKED TRADING LLC"' + ",-0- " * 10 + "\n", 2, "ent_num"),
        (SDN_ROW + '9002,"",-0- ' + ",-0- " * 9 + "\n", 2, "the name is empty"),
        (SDN_ROW + "9002,-0- " + ",-0- " * 10 + "\n", 2, "the name is empty"),
        (SDN_ROW + '9002,"BLOCKED TRADING', 2, "cut short"),  # an unterminated quote
        (SDN_ROW + '9002,"BLOCKED TRADING LLC",-0- ,"SYN', 2, "cut short"),
        (SDN_ROW + '9002,"BLOCKED TRADING LLC",-0- ,', 2, "ends mid-row"),
        (SDN_ROW + SDN_ROW, 2, "used twice"),
        (SDN_ROW + '9002,"X",submarine' + ",-0- " * 9 + "\n", 2, "SDN_Type"),
    ],
)
def test_a_malformed_sdn_file_is_refused_whole(content: str, line: int, what: str) -> None:
    with pytest.raises(InvalidSanctionsFile) as refused:
        parse_sdn(content)
    assert refused.value.code == "invalid_sanctions_file"
    assert refused.value.facts["line"] == line
    assert what in refused.value.detail


@pytest.mark.parametrize(
    ("content", "line", "what"),
    [
        (FTM_LINE + "\nnot json\n", 2, "not JSON"),
        (FTM_LINE + "\n" + FTM_LINE[:40], 2, "ends mid-record"),  # truncated last line
        (FTM_LINE + "\n" + FTM_LINE[:40] + "\n", 2, "not JSON"),  # cut, then a newline
        (FTM_LINE + "\n[1, 2]\n", 2, "not a JSON object"),
        ('{"schema": "Person", "properties": {}}\n', 1, "'id'"),
        ('{"id": "a", "properties": {}}\n', 1, "'schema'"),
        ('{"id": "a", "schema": "Person"}\n', 1, "'properties'"),
        ('{"id": "a", "schema": "Person", "properties": []}\n', 1, "not an object"),
        ('{"id": "a", "schema": "Person", "properties": {"name": "Ivan"}}\n', 1, "list of"),
        ('{"id": "a", "schema": "Person", "properties": {"name": [" "]}}\n', 1, "empty"),
        ('{"id": "a", "schema": "Person", "properties": {"country": ["ru"]}}\n', 1, "no name"),
        (FTM_LINE + "\n" + FTM_LINE + "\n", 2, "used twice"),
    ],
)
def test_a_malformed_ftm_file_is_refused_whole(content: str, line: int, what: str) -> None:
    with pytest.raises(InvalidSanctionsFile) as refused:
        parse_ftm(content)
    assert refused.value.facts["line"] == line
    assert what in refused.value.detail


def test_ftm_refuses_bytes_that_are_not_utf8_naming_the_line() -> None:
    with pytest.raises(InvalidSanctionsFile) as refused:
        parse_ftm(FTM_LINE.encode() + b'\n{"id": "\xff"}\n')
    assert refused.value.facts["line"] == 2


def test_non_party_schemas_are_skipped_not_refused() -> None:
    content = '{"id": "s1", "schema": "Sanction", "properties": {"entity": ["a"]}}\n'
    assert parse_ftm(content).entries == ()


# --- screening -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Viktor Sanctionov", "synth-viktor-sanctionov"),
        ("Sanctionov Viktor", "synth-viktor-sanctionov"),  # reordered
        ("SANCTIONOV, Viktor", "synth-viktor-sanctionov"),
        ("Viktor Sanktionov", "synth-viktor-sanctionov"),  # one letter wrong
        ("Victor Sanctionov", "synth-viktor-sanctionov"),
        ("Viktr Sanctionov", "synth-viktor-sanctionov"),  # one letter missing
        ("Vicktor Sancsionov", "synth-viktor-sanctionov"),  # two slips
        ("Виктор Санкционов", "synth-viktor-sanctionov"),  # Cyrillic against Latin
        ("Mr. Viktor Sanctionov", "synth-viktor-sanctionov"),  # honorific
        ("Viktor Petrovich Sanctionov", "synth-viktor-sanctionov"),  # middle name
        ("V. Sanctionov", "synth-viktor-sanctionov"),  # initial, capped at 90
        ("Blocked Trading LLC", "synth-blocked-trading"),
        ("BLOCKED TRADING LIMITED", "synth-blocked-trading"),  # legal form differs
        ("Vladislav Testovskiy", "synth-vladislav-testovsky"),
        ("Владислав Тестовский", "synth-vladislav-testovsky"),  # script to script
        ("هدّار بن قصيمي", "synth-haddar-qusaymi"),  # Arabic to its Arabic alias
        ("Haddar bin Qusaymi", "synth-haddar-qusaymi"),
        ("Hadar Qusaymi", "synth-haddar-qusaymi"),
        ("冼栖鹤", "synth-xian-qihe"),  # the same characters
        ("Xian Qihe", "synth-xian-qihe"),  # pinyin
        ("Xian Qi He", "synth-xian-qihe"),
        ("冼栖鹤先生", "synth-xian-qihe"),  # with 先生 after
        ("Mr. Ivan Petrov", "synth-ivan-petrov"),
        ("Petrov Ivan", "synth-ivan-petrov"),
        ("Kazim Al-Qudrani", "synth-kazim-qudrani"),
        ("Kazim bin Yusrani Al-Qudrani", "synth-kazim-qudrani"),  # part of a long nasab
        ("Muhammad Al-Zarqawan", "synth-mohammed-zarqawan"),
        ("Mohamed Zarqawan", "synth-mohammed-zarqawan"),
        ("Aristidis Konstantaros", "synth-aristeidis-konstantaros"),
        ("Αριστείδης Κωνσταντάρος", "synth-aristeidis-konstantaros"),  # Greek
        ("탁민결", "synth-tak-mingyeol"),  # Hangul
        ("Tak Min Gyeol", "synth-tak-mingyeol"),
        ("金灯笼兑换所", "synth-golden-lantern"),
        ("Elena Nevymyshlenaya", "synth-elena-nevymyshlennaya"),
        # Clearly different names.
        ("Ivan Petrovsky-Smith Holdings", None),  # 78: 'petrovsky' ~ 'petrov', two extra
        ("Bob Jones", None),  # 'jones' against 'johnson' is 67: not the same word
        ("Ali", None),  # one common token does not make a three-token name
        ("Mahdouri", None),
        ("John Smith", None),
        ("Golden", None),
        ("Dmitry Fakeev", None),  # 82: near, below the threshold
        ("", None),
        ("...", None),
    ],
)
def test_screen(screener: Screener, query: str, expected: str | None) -> None:
    hits = screener.screen(query)
    assert (hits[0].entry_id if hits else None) == expected
    for hit in hits:
        assert 85 <= hit.score <= 100
        assert hit.query == normalised(query)
        assert hit.explanation.startswith(f"'{hit.query}' ~ ")
        assert hit.explanation.endswith(f"score {hit.score}")


def test_the_near_misses_score_below_the_threshold_with_their_reasons(screener: Screener) -> None:
    [hit] = screener.screen("Ivan Petrovsky-Smith Holdings", threshold=50, limit=1)
    assert hit.entry_id == "synth-ivan-petrov"
    assert hit.score == 78
    assert "'petrovsky' ~ 'petrov' (80)" in hit.explanation
    assert "query tokens not in the listed name: 'smith', 'holdings'" in hit.explanation
    hits = screener.screen("Ali", threshold=1)
    assert all(h.score < 50 for h in hits)
    assert "the lesser coverage counts" in hits[0].explanation


def test_the_explanation_says_which_tokens_matched_and_how(screener: Screener) -> None:
    [hit] = screener.screen("Viktr Sanctionov Petrovich Mr", limit=1)
    assert hit.explanation == (
        "'viktr sanctionov petrovich' ~ 'sanctionov viktor petrovich': 3 of 3 query tokens "
        "match ('viktr' ~ 'viktor' (91); 'sanctionov' = 'sanctionov'; 'petrovich' = "
        "'petrovich'); by length the pairs cover 98 % of the query and 98 % of the listed name; "
        "two or more tokens pair on both sides, so the better coverage counts; score 98"
    )
    [middle] = Screener([entry("v", "Viktor Petrovich Sanktsionov")]).screen("Viktor Sanctionov")
    assert middle.explanation == (
        "'viktor sanctionov' ~ 'viktor petrovich sanktsionov': 2 of 2 query tokens match "
        "('viktor' = 'viktor'; 'sanctionov' ~ 'sanktsionov' (86)); listed tokens not in the "
        "query: 'petrovich'; by length the pairs cover 91 % of the query and 59 % of the listed "
        "name; two or more tokens pair on both sides, so the better coverage counts; "
        "1 unpaired token(s) cost 5; score 86"
    )
    [initial] = screener.screen("V. Sanctionov", limit=1)
    assert initial.score == 90
    assert "'v' and 'viktor' share the initial 'v'" in initial.explanation


def test_joined_and_split_tokens_meet() -> None:
    screener = Screener(
        [entry("zw", "张伟明"), entry("ub", "Usama Binladen"), entry("ar", "Abdul Rahman Qasimar")]
    )
    for query, expected in [
        ("Zhang Weiming", "zw"),
        ("Weiming Zhang", "zw"),
        ("Zhang Wei Ming", "zw"),
        ("Usama Bin Laden", "ub"),
        ("Abdulrahman Qasimar", "ar"),
    ]:
        hits = screener.screen(query)
        assert [h.entry_id for h in hits] == [expected], query
        assert hits[0].score == 100
    [hit] = screener.screen("Zhang Weiming")
    assert "'weiming' = 'wei'+'ming'" in hit.explanation


def test_arabic_script_reaches_a_latin_only_name_below_the_default_threshold() -> None:
    screener = Screener([entry("hq", "Haddar bin Qusaymi")])
    assert screener.screen("هدّار بن قصيمي") == []
    [hit] = screener.screen("هدّار بن قصيمي", threshold=75)
    assert hit.score == 80
    assert "'hdr' ~ 'haddar' (same consonants, 80)" in hit.explanation


def test_each_entry_is_reported_once_by_its_best_name(screener: Screener) -> None:
    hits = screener.screen("Sanctionov Viktor Petrovich", limit=10)
    assert [h.entry_id for h in hits] == ["synth-viktor-sanctionov"]
    assert hits[0].matched_name == "Sanctionov Viktor Petrovich"
    assert hits[0].source == "synthetic.ftm.json"
    assert hits[0].schema == "Person"


def test_the_allow_list_clears_exactly_the_cleared_pair() -> None:
    entries = [entry("a", "Ivan Petrov"), entry("b", "Ivan Petrova")]
    plain = Screener(entries)
    assert [h.entry_id for h in plain.screen("Mr Ivan Petrov")] == ["a", "b"]
    cleared = Screener(entries, allowed=[(normalised("Ivan Petrov"), "a")])
    assert [h.entry_id for h in cleared.screen("Mr Ivan Petrov")] == ["b"]
    assert [h.entry_id for h in cleared.screen("Ivan Petrova")] == ["b", "a"]  # another name
    # Keyed by the raw name, the pair is normalised on the way in.
    raw = Screener(entries, allowed=[("IVAN  PETROV", "b")])
    assert [h.entry_id for h in raw.screen("Ivan Petrov")] == ["a"]


def test_threshold_and_limit(screener: Screener) -> None:
    many = Screener([entry(f"p{i}", f"Ivan Petrov {suffix}") for i, suffix in enumerate("abcde")])
    assert [h.entry_id for h in many.screen("Ivan Petrov", limit=3)] == ["p0", "p1", "p2"]
    assert screener.screen("Viktor Sanctionov", threshold=100)[0].score == 100
    for bad in ({"threshold": 101}, {"threshold": -1}, {"limit": 0}, {"limit": 101}):
        with pytest.raises(InvalidScreeningRequest) as refused:
            screener.screen("Viktor", **bad)
        assert isinstance(refused.value, FundpoolError)


def test_a_common_token_still_admits_a_name_it_shares_with_a_rare_one() -> None:
    # "trading" reaches 600 names: too common to find candidates with, while two rarer query
    # tokens remain; a name with one rare token and "trading" is still scored.
    fillers = [entry(f"f{i}", f"Filler{i} Trading") for i in range(600)]
    screener = Screener([*fillers, entry("vt", "Vafoski Trading"), entry("pq", "Pedreez Quay")])
    hits = screener.screen("Vafoski Pedreez Trading")
    assert [h.entry_id for h in hits] == ["vt"]
    assert hits[0].score == 95


def test_an_empty_list_screens_to_nothing() -> None:
    assert Screener([]).screen("Viktor Sanctionov") == []


def test_both_shipped_lists_screen_together() -> None:
    entries = load_file(FTM).entries + load_file(SDN).entries
    hits = Screener(entries).screen("Viktor Sanctionov", limit=5)
    assert {(h.entry_id, h.source) for h in hits} == {
        ("synth-viktor-sanctionov", "synthetic.ftm.json"),
        ("ofac-9001", "synthetic_sdn.csv"),
    }


# --- synthetic lists and properties --------------------------------------------------------------


def test_generate_is_deterministic_and_covers_the_scripts() -> None:
    first = generate(2_000, seed=7)
    assert first == generate(2_000, seed=7)
    assert first != generate(2_000, seed=8)
    assert len({e.id for e in first}) == 2_000
    names = " ".join(n for e in first for n in e.names)
    for probe in ("а", "ب", "王", "a"):  # Cyrillic, Arabic, Chinese, Latin
        assert probe in names or any(probe in n for e in first for n in e.names)
    assert {e.schema for e in first} == {"Person", "Organization", "Company"}


@pytest.fixture(scope="module")
def synthetic() -> tuple[list[ListEntry], Screener]:
    entries = generate(3_000, seed=1)
    return entries, Screener(entries)


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_screen_never_raises_and_is_deterministic(text: str) -> None:
    screener = shipped_screener()
    first = screener.screen(text, threshold=0)
    assert first == screener.screen(text, threshold=0)
    assert all(0 <= h.score <= 100 for h in first)
    assert [h.score for h in first] == sorted((h.score for h in first), reverse=True)


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_a_listed_name_always_matches_itself(
    synthetic: tuple[list[ListEntry], Screener], data: st.DataObject
) -> None:
    entries, screener = synthetic
    listed = data.draw(st.sampled_from(entries))
    name = data.draw(st.sampled_from(listed.names))
    if len(tokens(name)) < 2:
        return
    hits = screener.screen(name, threshold=100, limit=100)
    assert listed.id in {h.entry_id for h in hits}


@given(st.lists(st.text(min_size=1, max_size=12), min_size=2, max_size=5))
@settings(max_examples=200, deadline=None)
def test_any_name_of_two_tokens_or_more_matches_itself(words: list[str]) -> None:
    name = " ".join(words)
    if len(tokens(name)) < 2:
        return
    hits = Screener([entry("self", name), entry("other", "Viktor Sanctionov")]).screen(name)
    assert hits
    assert hits[0].entry_id == "self"
    assert hits[0].score == 100
