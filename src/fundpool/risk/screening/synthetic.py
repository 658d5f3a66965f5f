"""Invented list entries, as many as a benchmark needs: deterministic for a seed, no real person.

Every name is assembled from random syllables (Latin and Cyrillic), random consonants
(Arabic script) or random name characters (Chinese), so a name that resembles a real
person's does so by chance. The mix follows what real lists hold:

- 50 % persons in Latin script: given name, sometimes a middle name, surname; aliases
  reorder them ("SURNAME, Given"), add the middle name, or misspell one letter (each surname
  has one misspelling);
- 15 % persons in Cyrillic with a Latin alias written by another convention than anyascii's
  ("Sanktsionov" / "Sanktzionoff");
- 10 % persons in Arabic script, often with بن ("son of"), with a Latin alias (each word
  has one of three spellings, as a real name has a few across a list);
- 10 % persons in Chinese characters with their pinyin alias ("Zhang Weiming");
- 15 % organisations: invented words, a sector word and a legal form.

Given names and surnames are drawn with a shifted Zipf law (the r-th most common has weight
1/(r + 10)): the most common given name is in about 2 % of the names and the most common
surname in about 1 %, as in real lists, so the index meets frequent tokens as well as rare
ones.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence

from anyascii import anyascii

from fundpool.risk.screening.lists import ListEntry

COUNT_MAX = 2_000_000
SOURCE = "synthetic"

_ONSETS = (
    "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gr",
    "kr", "st", "tr", "sh", "zh", "ch", "th", "h", "j",
)  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ei", "ou")
_CODAS = ("", "", "", "n", "r", "l", "s", "k", "m")
_SURNAME_ENDINGS = (
    "ov", "enko", "escu", "son", "ez", "ini", "ard", "ek", "ani", "oglu", "berg", "ski", "",
    "", "",
)  # fmt: skip

_CYRILLIC_ONSETS = tuple("бвгджзклмнпрстфхцчш")
_CYRILLIC_VOWELS = tuple("аеиоуыяю")
_CYRILLIC_ENDINGS = ("ов", "ев", "ин", "ский", "енко", "ович", "")
_LATIN_VARIANTS = (("kh", "h"), ("ts", "tz"), ("ov", "off"), ("ya", "ia"), ("yu", "iu"))

_ARABIC_ROMAN = {
    "ب": "b", "ت": "t", "ج": "j", "ح": "h", "خ": "kh", "د": "d", "ر": "r", "ز": "z",
    "س": "s", "ش": "sh", "ص": "s", "ط": "t", "ع": "a", "غ": "gh", "ف": "f", "ق": "q",
    "ك": "k", "ل": "l", "م": "m", "ن": "n", "ه": "h", "و": "w", "ي": "y",
}  # fmt: skip
_ARABIC_VOWELS = ("a", "i", "u", "a")
_ROMANISATIONS = 3

_CHINESE_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_CHINESE_GIVEN = (
    "伟明华建国军平志强文秀英红兰芳玲丽静敏燕霞云海波涛峰晨宇浩然俊杰鹏飞东南北江河山"
    "林松柏梅竹雪冰月星光辉荣福寿康宁安乐喜庆祥瑞嘉佳欣怡婷颖慧智勇刚毅坚诚信义仁德才"
    "学博思远航帆舟"
)

_SECTORS = (
    "Trading", "Holdings", "Shipping", "Industries", "Group", "Logistics", "Capital", "Energy",
    "Metals", "Petrochemical", "Exchange", "Finance", "Maritime",
)  # fmt: skip
_LEGAL_FORMS = ("LLC", "Ltd", "GmbH", "JSC", "SA", "Inc", "FZE", "")
_COUNTRIES = ("ru", "ir", "kp", "sy", "by", "ve", "cu", "mm", "cn", "ae", "tr", "lb", "iq")
_PROGRAMS = ("SYNTH-A", "SYNTH-B", "SYNTH-C", "SYNTH-D", "SYNTH-E")


def generate(count: int, seed: int = 0) -> list[ListEntry]:
    """`count` invented entries; the same `count` and `seed` give the same entries."""
    if not 0 <= count <= COUNT_MAX:
        raise ValueError(f"count must be within 0 and {COUNT_MAX}, not {count}")
    rng = random.Random(seed)
    pools = _Pools(rng)
    makers: list[tuple[float, str, Callable[[random.Random, _Pools], tuple[str, ...]]]] = [
        (0.50, "Person", _latin_person),
        (0.15, "Person", _cyrillic_person),
        (0.10, "Person", _arabic_person),
        (0.10, "Person", _chinese_person),
        (0.15, "Organization", _organisation),
    ]
    cumulative = list(itertools.accumulate(share for share, _, _ in makers))
    entries = []
    for index in range(count):
        _, schema, maker = rng.choices(makers, cum_weights=cumulative)[0]
        if schema == "Organization" and rng.random() < 0.5:
            schema = "Company"
        entries.append(
            ListEntry(
                id=f"synth-{seed}-{index:07d}",
                source=SOURCE,
                schema=schema,
                names=maker(rng, pools),
                countries=(rng.choice(_COUNTRIES),),
                programs=(rng.choice(_PROGRAMS),),
            )
        )
    return entries


class _Pools:
    """The name parts of one seed, each with its Zipf weights."""

    def __init__(self, rng: random.Random) -> None:
        self.given = _pool(rng, 2_000, lambda: _latin_word(rng, 2))
        self.surnames = _pool(
            rng, 20_000, lambda: _latin_word(rng, rng.choice((2, 3))) + rng.choice(_SURNAME_ENDINGS)
        )
        self.cyrillic_given = _pool(rng, 1_500, lambda: _cyrillic_word(rng, 2, ""))
        self.cyrillic_surnames = _pool(
            rng,
            10_000,
            lambda: _cyrillic_word(rng, rng.choice((2, 3)), rng.choice(_CYRILLIC_ENDINGS)),
        )
        self.arabic_words = _pool(rng, 5_000, lambda: _arabic_word(rng))
        self.chinese_surnames = _pool(rng, len(_CHINESE_SURNAMES), iter(_CHINESE_SURNAMES).__next__)


_Pool = tuple[Sequence[str], Sequence[float]]


def _pool(rng: random.Random, size: int, make: Callable[[], str]) -> _Pool:
    words: dict[str, None] = {}
    attempts = 0
    while len(words) < size and attempts < size * 20:
        words[make()] = None
        attempts += 1
    cumulative = list(itertools.accumulate(1 / (rank + 10) for rank in range(len(words))))
    return list(words), cumulative


def _draw(rng: random.Random, pool: _Pool) -> str:
    words, cumulative = pool
    return rng.choices(words, cum_weights=cumulative)[0]


def _latin_word(rng: random.Random, syllables: int) -> str:
    word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables))
    return word + rng.choice(_CODAS)


def _cyrillic_word(rng: random.Random, syllables: int, ending: str) -> str:
    word = "".join(
        rng.choice(_CYRILLIC_ONSETS) + rng.choice(_CYRILLIC_VOWELS) for _ in range(syllables)
    )
    return word + ending


def _arabic_word(rng: random.Random) -> str:
    return "".join(rng.choice(list(_ARABIC_ROMAN)) for _ in range(rng.choice((3, 4, 4, 5))))


def _latin_person(rng: random.Random, pools: _Pools) -> tuple[str, ...]:
    given, surname = _draw(rng, pools.given).title(), _draw(rng, pools.surnames).title()
    names = [f"{given} {surname}"]
    if rng.random() < 0.5:
        names.append(f"{surname.upper()}, {given}")
    if rng.random() < 0.3:
        names.append(f"{given} {_draw(rng, pools.given).title()} {surname}")
    if rng.random() < 0.2:
        names.append(f"{given} {_misspelt(surname)}")
    return tuple(dict.fromkeys(names))


def _misspelt(word: str) -> str:
    # One misspelling per surname, as lists carry a name's known variants, not new ones.
    rng = random.Random(word)
    position = rng.randrange(len(word))
    return (word[:position] + rng.choice("aeioukrst") + word[position + 1 :]).title()


def _cyrillic_person(rng: random.Random, pools: _Pools) -> tuple[str, ...]:
    given = _draw(rng, pools.cyrillic_given).title()
    surname = _draw(rng, pools.cyrillic_surnames).title()
    name = f"{given} {surname}"
    latin = anyascii(name)
    for before, after in _LATIN_VARIANTS:
        if rng.random() < 0.5:
            latin = latin.replace(before, after)
    return tuple(dict.fromkeys((name, latin)))


def _arabic_person(rng: random.Random, pools: _Pools) -> tuple[str, ...]:
    words = [_draw(rng, pools.arabic_words) for _ in range(rng.choice((2, 2, 3)))]
    if rng.random() < 0.5:
        words.insert(1, "بن")
    name = " ".join(words)
    latin = " ".join(
        "bin" if word == "بن" else _romanised(word, rng.randrange(_ROMANISATIONS)) for word in words
    )
    return (name, latin)


def _romanised(word: str, variant: int) -> str:
    # The vowels the script does not write, as a romanisation supplies them: a word has
    # `_ROMANISATIONS` spellings across a list, as a real name has a few, not one per entry.
    rng = random.Random(f"{word}:{variant}")
    consonants = [_ARABIC_ROMAN[letter] for letter in word]
    vowels = [rng.choice(_ARABIC_VOWELS) for _ in consonants[:-1]]
    pairs = itertools.zip_longest(consonants, vowels, fillvalue="")
    return "".join(consonant + vowel for consonant, vowel in pairs).title()


def _chinese_person(rng: random.Random, pools: _Pools) -> tuple[str, ...]:
    surname = _draw(rng, pools.chinese_surnames)
    given = "".join(rng.choice(_CHINESE_GIVEN) for _ in range(rng.choice((1, 2, 2))))
    pinyin_given = "".join(anyascii(character) for character in given).title()
    return (surname + given, f"{anyascii(surname).title()} {pinyin_given}")


def _organisation(rng: random.Random, pools: _Pools) -> tuple[str, ...]:
    words = [_draw(rng, pools.surnames).title() for _ in range(rng.choice((1, 2)))]
    sector = rng.choice(_SECTORS)
    form = rng.choice(_LEGAL_FORMS)
    name = " ".join([*words, sector, form]).strip()
    names = [name]
    if rng.random() < 0.4:
        names.append(" ".join([*words, rng.choice(_SECTORS), rng.choice(_LEGAL_FORMS)]).strip())
    return tuple(dict.fromkeys(names))
