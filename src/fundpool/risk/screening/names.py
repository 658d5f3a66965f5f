"""A name in any script, brought to the lowercase ASCII tokens that screening compares.

The steps, in order, and why each is there:

1. **Bound.** Only the first `NAME_CHARS_MAX` (512) characters are read (before and again
   after NFKC, which can expand a character to eighteen), only the first `TOKENS_MAX` (16)
   tokens kept, each cut at `TOKEN_CHARS_MAX` (64): no party's name is longer, and the work
   of one screening stays bounded whatever a payee field holds.
2. **NFKC, then casefold.** Compatibility forms (full-width letters, ligatures such as "ﬁ",
   circled digits) become their plain letters; casefold is lowercase that also folds "ß".
3. **CJK honorifics dropped** where they end (or are) a run of ideographs: 先生, 女士, 小姐,
   夫人, 阁下/閣下, 同志; さん, 様, 氏; 씨, 님. Chinese writes them after the name with no space.
4. **Transliteration to ASCII** with anyascii: Cyrillic, Greek, Arabic, Hebrew, Latin
   diacritics and the rest. Chinese ideographs and Hangul syllables are transliterated one
   character at a time, each becoming its own token: anyascii alone turns 习近平 into
   "XiJinPing", one token, which could never meet "Xi Jinping" token by token. Kana are
   syllables already written with word separators, so a run of kana stays one token
   ("やまだ" → "yamada").
5. **Punctuation and diacritics removed.** Apostrophes vanish inside a word ("O'Brien" →
   "obrien"; Arabic hamza and ain, which anyascii writes as "'" and "`", likewise); every
   other character that is not a-z or 0-9 separates tokens ("Petrovsky-Smith" → "petrovsky
   smith"), so control characters and symbols are only separators.
6. **Noise tokens dropped**: `NOISE_TOKENS`, honorifics (mr, dr, sheikh, haji, господин …)
   and legal forms (ltd, llc, gmbh, ооо …). They say nothing about who the party is, and
   would make "Mr Ivan Petrov" look different from "Ivan Petrov". A name made only of noise
   ("LLC") keeps its tokens: dropping them all would leave nothing to screen.

What is left may be empty (an empty name, only punctuation or control characters): an empty
token list screens to no hits. Nothing here raises for any `str`.
"""

from __future__ import annotations

import re
import unicodedata

from anyascii import anyascii

NAME_CHARS_MAX = 512  # characters of a name that are read; the rest is ignored
TOKENS_MAX = 16  # tokens of a name that are kept
TOKEN_CHARS_MAX = 64  # characters of a token that are kept

# Honorifics and legal forms, as they read after transliteration, so that one set covers
# every script: "gospodin" is господин, "lsyd" and "lshykh" are السيد and الشيخ, "ooo" is
# ООО. Kept small on purpose: a word here is invisible to screening, so a word that is also a
# given name or a surname somewhere ("as", "ab", "ao", "sayyid") is left out.
HONORIFIC_TOKENS = frozenset(
    {
        "mr", "mrs", "ms", "miss", "mister", "mx", "dr", "prof", "sir", "dame", "lord", "lady",
        "madam", "madame", "mme", "mlle", "monsieur", "herr", "frau", "senor", "senora",
        "sheikh", "shaikh", "shaykh", "sheik", "haji", "hajji", "hadji", "alhaji",
        "gospodin", "gospozha", "lsyd", "lshykh",
    }
)  # fmt: skip
LEGAL_FORM_TOKENS = frozenset(
    {
        "ltd", "limited", "llc", "llp", "lp", "plc", "inc", "incorporated", "corp",
        "corporation", "co", "company", "gmbh", "ag", "kg", "sa", "sarl", "sas", "srl",
        "spa", "bv", "nv", "oy", "pte", "pty", "jsc", "ojsc", "cjsc", "pjsc", "ooo", "oao",
        "zao", "pao", "fze", "fzco", "the",
    }
)  # fmt: skip
NOISE_TOKENS = HONORIFIC_TOKENS | LEGAL_FORM_TOKENS

CJK_HONORIFICS = ("先生", "女士", "小姐", "夫人", "阁下", "閣下", "同志", "さん", "様", "氏")
CJK_HONORIFICS_KOREAN = ("씨", "님")

# Ideographs (CJK unified, extension A, compatibility, extensions B and beyond) and Hangul
# syllables: one character is one syllable of a name, so one token.
_SYLLABIC_CHAR = re.compile(
    "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\U00020000-\U0003134f]"
)
_CJK_HONORIFIC = re.compile(
    "(?:"
    + "|".join(CJK_HONORIFICS + CJK_HONORIFICS_KOREAN)
    + ")(?![\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af])"
)
_APOSTROPHES = re.compile("['`\u2018\u2019\u02bc\u02bb]")
_SEPARATORS = re.compile("[^a-z0-9]+")


def tokens(name: str) -> tuple[str, ...]:
    """The name's tokens: lowercase ASCII words, noise dropped, at most `TOKENS_MAX`."""
    text = unicodedata.normalize("NFKC", name[:NAME_CHARS_MAX])[:NAME_CHARS_MAX].casefold()
    text = _CJK_HONORIFIC.sub(" ", text)
    text = _SYLLABIC_CHAR.sub(_spaced_syllable, text)
    text = anyascii(text).lower()
    text = _APOSTROPHES.sub("", text)
    words = _SEPARATORS.sub(" ", text).split()
    kept = [word for word in words if word not in NOISE_TOKENS] or words
    return tuple(word[:TOKEN_CHARS_MAX] for word in kept[:TOKENS_MAX])


def normalised(name: str) -> str:
    """The name as screening sees it, one string: the key of the risk officers' allow-list."""
    return " ".join(tokens(name))


def _spaced_syllable(match: re.Match[str]) -> str:
    return f" {anyascii(match.group())} "
