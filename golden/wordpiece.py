"""Pure-Python BERT (uncased) WordPiece tokenizer.

A dependency-free re-implementation of the two stages of Hugging Face's
``BertTokenizer`` (``do_lower_case=True``, ``tokenize_chinese_chars=True``):

1. *Basic* tokenization: drop NUL / U+FFFD / control characters, map every
   whitespace character to a space, put spaces around CJK ideographs, NFC
   normalise, lower-case, strip accents (NFD and drop combining marks), then
   split on whitespace and on every punctuation character (ASCII symbol
   ranges or any Unicode ``P*`` category).
2. *WordPiece*: greedy longest-match-first over the vocabulary; continuation
   pieces carry the ``##`` prefix; a word with no full segmentation (or
   longer than 100 characters) becomes ``[UNK]``.

``encode`` wraps the ids in ``[CLS] ... [SEP]`` and truncates the word pieces
so the whole sequence fits ``max_length``.  Special-token strings that occur
inside the input text (e.g. a literal ``"[SEP]"``) are *not* recognised; they
are tokenized like ordinary text.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

__all__ = ["load_vocab", "basic_tokenize", "wordpiece", "WordPieceTokenizer"]


def load_vocab(path: str | Path) -> dict[str, int]:
    """Read a ``vocab.txt`` (one token a line); a token's id is its line index."""
    vocab: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            vocab[line.rstrip("\n")] = i
    return vocab


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text)
                   if unicodedata.category(c) != "Mn")


def _split_on_punc(token: str) -> list[str]:
    out: list[list[str]] = []
    start_new = True
    for ch in token:
        if _is_punctuation(ch):
            out.append([ch])
            start_new = True
        else:
            if start_new:
                out.append([])
            start_new = False
            out[-1].append(ch)
    return ["".join(x) for x in out]


def basic_tokenize(text: str, do_lower_case: bool = True) -> list[str]:
    """Clean, lower-case, strip accents and split on whitespace and punctuation."""
    chars = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        if _is_whitespace(ch):
            chars.append(" ")
        elif _is_cjk(cp):
            chars.append(f" {ch} ")
        else:
            chars.append(ch)
    text = unicodedata.normalize("NFC", "".join(chars))
    words: list[str] = []
    for tok in text.split():
        if do_lower_case:
            tok = _strip_accents(tok.lower())
        words.extend(_split_on_punc(tok))
    return " ".join(words).split()


def wordpiece(word: str, vocab: dict[str, int], unk: str = "[UNK]",
              max_chars: int = 100) -> list[str]:
    """Greedy longest-match-first WordPiece segmentation of one word."""
    if len(word) > max_chars:
        return [unk]
    pieces: list[str] = []
    start = 0
    while start < len(word):
        end = len(word)
        cur = None
        while start < end:
            sub = word[start:end]
            if start > 0:
                sub = "##" + sub
            if sub in vocab:
                cur = sub
                break
            end -= 1
        if cur is None:
            return [unk]
        pieces.append(cur)
        start = end
    return pieces


class WordPieceTokenizer:
    """BERT uncased tokenizer over a ``vocab.txt``."""

    def __init__(self, vocab: dict[str, int] | str | Path, do_lower_case: bool = True):
        self.vocab = vocab if isinstance(vocab, dict) else load_vocab(vocab)
        self.inv_vocab = {i: t for t, i in self.vocab.items()}
        self.do_lower_case = do_lower_case
        self.cls_id = self.vocab["[CLS]"]
        self.sep_id = self.vocab["[SEP]"]
        self.unk_id = self.vocab["[UNK]"]
        self.pad_id = self.vocab["[PAD]"]

    def tokenize(self, text: str) -> list[str]:
        """Word pieces of ``text`` (no special tokens, no truncation)."""
        out: list[str] = []
        for word in basic_tokenize(text, self.do_lower_case):
            out.extend(wordpiece(word, self.vocab))
        return out

    def convert_tokens_to_ids(self, tokens: list[str]) -> list[int]:
        return [self.vocab.get(t, self.unk_id) for t in tokens]

    def convert_ids_to_tokens(self, ids) -> list[str]:
        return [self.inv_vocab[int(i)] for i in ids]

    def encode(self, text: str, max_length: int | None = 512) -> list[int]:
        """``[CLS] pieces [SEP]`` ids, pieces truncated to ``max_length - 2``."""
        ids = self.convert_tokens_to_ids(self.tokenize(text))
        if max_length is not None:
            if max_length < 2:
                raise ValueError("max_length must be >= 2 to hold [CLS] and [SEP]")
            ids = ids[: max_length - 2]
        return [self.cls_id, *ids, self.sep_id]
