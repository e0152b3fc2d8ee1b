"""Tests of the MiniLM-L6 NumPy golden model (workloads/minilm.py).

Fast (a few short forward passes).  The one-off cross-check against the torch
model (max |diff| of the last hidden state 2.3e-6 on 256 GPL-3 tokens) was done
outside the suite: torch is not a dependency.  The tokenizer is Hugging Face's
``tokenizers`` library; its ids are checked against ids recorded from the
project's former, independent pure-Python WordPiece tokenizer.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import tokenizers

from accelgen.golden import quant
from accelgen.workloads import minilm


@pytest.fixture(scope="module")
def vocab_lines() -> list[str]:
    return (minilm.model_dir() / "vocab.txt").read_text(encoding="utf-8").split("\n")


@pytest.fixture(scope="module")
def trace():
    return minilm.forward(minilm.sample_ids(24))


# --------------------------------------------------------------------------- tokenizer
def test_special_tokens_and_word_ids(vocab_lines):
    tok = minilm.tokenizer()
    idx = {w: vocab_lines.index(w) for w in ("[CLS]", "[SEP]", "[UNK]", "the", "cat", "sat", ".")}
    assert (idx["[CLS]"], idx["[SEP]"], idx["[UNK]"]) == (101, 102, 100)
    assert tok.cls_id == idx["[CLS]"] and tok.sep_id == idx["[SEP]"]
    ids = minilm.encode("The cat sat.")
    assert ids.dtype == np.int64
    assert ids.tolist() == [idx["[CLS]"], idx["the"], idx["cat"], idx["sat"], idx["."], idx["[SEP]"]]
    assert idx["the"] == 1996  # line 1997 of vocab.txt


def test_wordpieces(vocab_lines):
    tok = minilm.tokenizer()
    assert isinstance(tok.backend, tokenizers.Tokenizer)
    assert tok.tokenize("Héllo, WORLD!") == ["hello", ",", "world", "!"]
    assert tok.tokenize("unaffable") == ["una", "##ffa", "##ble"]
    assert tok.tokenize("quantization") == ["quan", "##ti", "##zation"]
    ids = tok.convert_tokens_to_ids(tok.tokenize("quantization"))
    assert [vocab_lines[i] for i in ids] == ["quan", "##ti", "##zation"]
    assert tok.convert_ids_to_tokens(ids) == ["quan", "##ti", "##zation"]
    assert tok.tokenize("a" * 101) == ["[UNK]"]
    # a tokenizer built from the path (or the vocab dict) equals the cached one
    assert minilm.WordPieceTokenizer(minilm.model_dir() / "vocab.txt").encode("the cat") == tok.encode("the cat")
    assert minilm.WordPieceTokenizer(tok.vocab).encode("Héllo, WORLD!") == tok.encode("Héllo, WORLD!")


# Every expected id list below was produced by the OLD hand-written pure-Python
# tokenizer (golden/wordpiece.py, since deleted), an implementation independent
# of the `tokenizers` library -- not by the code under test.
_OLD_IDS = {
    # accents
    "Héllo, WORLD!": [101, 7592, 1010, 2088, 999, 102],
    "Crème brûlée à la carte, naïve café — déjà vu!":
        [101, 13675, 21382, 7987, 9307, 2063, 1037, 2474, 11122, 2063, 1010, 15743, 7668,
         1517, 2139, 3900, 24728, 999, 102],
    "ÀÉÎÕÜ ÅÆØ ß ŁĐ Ĳ ﬁ ＡＢＣ１２３ İstanbul":
        [101, 29347, 3695, 2226, 1037, 29667, 16415, 1096, 1105, 29671, 100, 1984, 100, 9960, 102],
    # punctuation
    "Hello!!! (world) [x] {y} <z> a-b_c 'q' \"r\" $5.00 @home #tag ~t `bt` ^c |p \\s":
        [101, 7592, 999, 999, 999, 1006, 2088, 1007, 1031, 1060, 1033, 1063, 1061, 1065, 1026,
         1062, 1028, 1037, 1011, 1038, 1035, 1039, 1005, 1053, 1005, 1000, 1054, 1000, 1002,
         1019, 1012, 4002, 1030, 2188, 1001, 6415, 1066, 1056, 1036, 18411, 1036, 1034, 1039,
         1064, 1052, 1032, 1055, 102],
    # special-token strings in the text are ordinary text, not special tokens
    "literal [SEP] and [CLS] and [UNK] and [MASK] [PAD]":
        [101, 18204, 1031, 19802, 1033, 1998, 1031, 18856, 2015, 1033, 1998, 1031, 4895, 2243,
         1033, 1998, 1031, 7308, 1033, 1031, 11687, 1033, 102],
    # CJK ideographs split one per token; kana / hangul are not
    "日本語のテキスト 中文字符 한국어":
        [101, 1864, 1876, 1950, 1671, 30239, 30227, 30233, 30240, 1746, 1861, 100, 100, 1469,
         30006, 30021, 29991, 30014, 30020, 29999, 30008, 102],
    # unknown words -> [UNK]: characters outside the vocab, a word over 100 characters
    "I ❤ 🤖 emoji ✓": [101, 1045, 100, 100, 7861, 29147, 2072, 100, 102],
    "a" * 101: [101, 100, 102],
    "a" * 100: [101, 13360, *[11057] * 48, 2050, 102],
    # word pieces
    "unaffable": [101, 14477, 20961, 3468, 102],
    "quantization": [101, 24110, 3775, 9276, 102],
    "xyzzyqwxv zzzqqqjjj": [101, 1060, 2100, 28753, 4160, 2860, 2595, 2615, 1062, 13213, 4160,
                            4160, 4160, 3501, 3501, 3501, 102],
    # control characters dropped, every kind of whitespace splits
    "tab\there\nnew\r\nline\x00nul\ufffdrepl\x07bell\u200bzw\u00a0nbsp\u3000ideo\u2028ls":
        [101, 21628, 2182, 2047, 17517, 5313, 2890, 24759, 17327, 2480, 2860, 1050, 5910, 2361,
         8909, 8780, 1048, 2015, 102],
    "": [101, 102],
    "   ": [101, 102],
}


@pytest.mark.parametrize("text", list(_OLD_IDS), ids=range(len(_OLD_IDS)))
def test_ids_match_old_tokenizer(text):
    assert minilm.encode(text, max_length=None).tolist() == _OLD_IDS[text]


def test_truncation_matches_old_tokenizer():
    text = "The cat sat on the mat. " * 5
    # ids from the OLD pure-Python tokenizer (see _OLD_IDS)
    expected = {2: [101, 102], 3: [101, 1996, 102], 5: [101, 1996, 4937, 2938, 102],
                8: [101, 1996, 4937, 2938, 2006, 1996, 13523, 102]}
    for max_length, ids in expected.items():
        assert minilm.encode(text, max_length).tolist() == ids
    full = minilm.encode(text, None).tolist()
    assert len(full) == 2 + 5 * 7
    assert minilm.encode(text, 512).tolist() == full
    assert minilm.encode(text, len(full)).tolist() == full
    with pytest.raises(ValueError):
        minilm.encode(text, 1)


# The first 64 ids of the GPL-3 sample text and a SHA-256 of all its 6840 word-piece
# ids (little-endian int32), both from the OLD pure-Python tokenizer (see _OLD_IDS).
_OLD_GPL3_IDS_64 = [
    101, 27004, 2236, 2270, 6105, 2544, 1017, 1010, 2756, 2238, 2289, 9385, 1006, 1039, 1007,
    2289, 2489, 4007, 3192, 1010, 4297, 1012, 1026, 16770, 1024, 1013, 1013, 1042, 22747, 1012,
    8917, 1013, 1028, 3071, 2003, 7936, 2000, 6100, 1998, 16062, 12034, 10450, 2213, 4809, 1997,
    2023, 6105, 6254, 1010, 2021, 5278, 2009, 2003, 2025, 3039, 1012, 3653, 3286, 3468, 1996,
    27004, 2236, 2270, 102]
_OLD_GPL3_PIECES_SHA256 = "726a896ca2f048d2a63280dad4be36c5e73013e1198aeead5ae995c8022eb219"


def test_sample_text_ids_match_old_tokenizer():
    if minilm.sample_text_source() != str(minilm.GPL3_PATH):
        pytest.skip("GPL-3 text not present; the recorded ids are of GPL-3")
    assert minilm.sample_ids(64).tolist() == _OLD_GPL3_IDS_64
    assert minilm.sample_ids(16).tolist() == _OLD_GPL3_IDS_64[:15] + [102]
    pieces = np.asarray(minilm._sample_pieces(), dtype="<i4")
    assert pieces.shape == (6840,)
    assert hashlib.sha256(pieces.tobytes()).hexdigest() == _OLD_GPL3_PIECES_SHA256


def test_truncation():
    ids = minilm.encode(minilm.sample_text(), max_length=8)
    assert ids.shape == (8,)
    assert ids[0] == 101 and ids[-1] == 102
    assert 101 not in ids[1:-1] and 102 not in ids[1:-1]


def test_sample_text_is_long():
    text = minilm.sample_text()
    pieces = minilm.tokenizer().tokenize(text)
    assert len(pieces) > 1000
    if minilm.sample_text_source() == str(minilm.GPL3_PATH):
        assert len(pieces) == 6840
        assert pieces[:4] == ["gnu", "general", "public", "license"]
    chunks = minilm.sample_chunks(256)
    assert all(c[0] == 101 and c[-1] == 102 and len(c) <= 256 for c in chunks)
    assert sum(len(c) - 2 for c in chunks) == len(pieces)


def test_fallback_text_is_long():
    """Without /usr/share/common-licenses/GPL-3 the stdlib docstrings are used."""
    text = minilm._fallback_text()
    assert len(minilm.tokenizer().tokenize(text)) > 1000


# --------------------------------------------------------------------------- forward
def test_weights_and_config():
    cfg = minilm.config()
    assert (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"],
            cfg["intermediate_size"]) == (384, 6, 12, 1536)
    w = minilm.load_weights()
    assert all(v.dtype == np.float32 for v in w.values())
    assert w["embeddings.word_embeddings.weight"].shape == (30522, 384)


def test_forward_shapes(trace):
    T = 24
    assert trace.ids.shape == (T,)
    assert trace.hidden.shape == (T, 384) and trace.hidden.dtype == np.float32
    assert np.isfinite(trace.hidden).all()
    assert len(trace.layers) == 6
    for lt in trace.layers:
        assert lt.x_qkv.shape == (T, 384)
        assert lt.x_attn_out.shape == (T, 384)
        assert lt.x_ffn1.shape == (T, 384)
        assert lt.x_ffn2.shape == (T, 1536)
        assert lt.probs.shape == (12, T, T)
        for a in (lt.x_qkv, lt.x_attn_out, lt.x_ffn1, lt.x_ffn2, lt.probs):
            assert a.dtype == np.float32


def test_attention_rows_sum_to_one(trace):
    for lt in trace.layers:
        assert (lt.probs >= 0).all()
        np.testing.assert_allclose(lt.probs.sum(axis=-1), 1.0, atol=1e-5)


def test_erf_and_gelu():
    x = np.linspace(-7, 7, 2001)
    ref = np.array([math.erf(v) for v in x])
    assert np.abs(minilm.erf(x) - ref).max() < 1e-6
    g_ref = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])
    assert np.abs(minilm.gelu(x) - g_ref).max() < 1e-5


def test_linear_weight_layout(trace):
    """[in, out] weights reproduce the traced activations: x_ffn2 = gelu(x_ffn1 @ W1 + b1)."""
    w1 = minilm.linear_weight(0, "ffn1")
    assert w1.shape == (384, 1536)
    np.testing.assert_array_equal(w1, minilm.load_weights()["encoder.layer.0.intermediate.dense.weight"].T)
    assert minilm.linear_weight(2, "ffn2").shape == (1536, 384)
    for name in ("q", "k", "v", "attn_out"):
        assert minilm.linear_weight(5, name).shape == (384, 384)
    assert minilm.linear_weight(0, "qkv").shape == (384, 1152)
    lt = trace.layers[0]
    y = minilm.gelu(lt.x_ffn1 @ w1 + minilm.linear_bias(0, "ffn1"))
    np.testing.assert_allclose(y, lt.x_ffn2, atol=1e-5)
    # and the next layer's input is the previous layer's output
    np.testing.assert_array_equal(trace.activation(1, "q"), trace.layers[1].x_qkv)


def test_cumulative_token_importance(trace):
    s = minilm.cumulative_token_importance(trace)
    T = trace.ids.shape[0]
    assert s.shape == (6, T)
    np.testing.assert_allclose(s[0], trace.layers[0].probs.sum(axis=(0, 1)), rtol=1e-6)
    np.testing.assert_allclose(s[3] - s[2], trace.layers[3].probs.sum(axis=(0, 1)), rtol=1e-5, atol=1e-6)
    assert (np.diff(s, axis=0) >= 0).all()
    # every query row sums to one, so each layer adds heads * T in total
    np.testing.assert_allclose(s.sum(axis=1), 12 * T * np.arange(1, 7), rtol=1e-5)


# --------------------------------------------------------------------------- quantizers
def _rng_matrix(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 3


def test_weight_quantizer_formula():
    w = _rng_matrix((64, 40), 0)
    w[:, 7] = 0.0                                         # guard: amax == 0 -> scale 1
    q, s = quant.quantize_weight_per_channel_int8(w)
    assert q.dtype == np.int8 and q.shape == (64, 40)
    assert s.dtype == np.float32 and s.shape == (40,)
    amax = np.abs(w).max(axis=0)
    s_ref = np.where(amax == 0, np.float32(1), amax / np.float32(127)).astype(np.float32)
    np.testing.assert_array_equal(s, s_ref)
    q_ref = np.clip(np.round(w / s_ref), -127, 127).astype(np.int8)
    np.testing.assert_array_equal(q, q_ref)
    assert q.min() >= -127 and q.max() <= 127
    assert (np.abs(q).max(axis=0)[amax > 0] == 127).all()
    assert (q[:, 7] == 0).all() and s[7] == 1
    err = np.abs(q.astype(np.float32) * s - w)
    assert (err <= s / 2 * (1 + 1e-5) + 1e-7).all()


def test_weight_quantizer_round_half_even():
    w = np.array([[127.0], [2.5], [3.5], [-2.5], [-0.5], [1.5]], dtype=np.float32)
    q, s = quant.quantize_weight_per_channel_int8(w)
    assert s[0] == 1.0
    assert q[:, 0].tolist() == [127, 2, 4, -2, 0, 2]


def test_activation_quantizer_formula():
    x = _rng_matrix((16, 96), 1)
    x[3] = 0.0
    q, s = quant.quantize_activation_per_token_int8(x)
    assert q.dtype == np.int8 and q.shape == (16, 96)
    assert s.dtype == np.float32 and s.shape == (16,)
    amax = np.abs(x).max(axis=1)
    s_ref = np.where(amax == 0, np.float32(1), amax / np.float32(127)).astype(np.float32)
    np.testing.assert_array_equal(s, s_ref)
    q_ref = np.clip(np.round(x / s_ref[:, None]), -128, 127).astype(np.int8)
    np.testing.assert_array_equal(q, q_ref)
    assert q.min() >= -128 and q.max() <= 127
    assert (q[3] == 0).all() and s[3] == 1
    err = np.abs(q.astype(np.float32) * s[:, None] - x)
    assert (err <= s[:, None] / 2 * (1 + 1e-5) + 1e-7).all()
    # ties round to even; the row max maps to +-127
    q2, s2 = quant.quantize_activation_per_token_int8(np.array([[-127.0, 2.5, 3.5, -0.5]], np.float32))
    assert s2[0] == 1.0 and q2[0].tolist() == [-127, 2, 4, 0]


# --------------------------------------------------------------------------- real cases
@pytest.mark.parametrize("layer,linear,K,N", [(0, "ffn1", 384, 1536), (3, "ffn2", 1536, 384),
                                              (5, "q", 384, 384)])
def test_real_mac_case(layer, linear, K, N):
    case = minilm.real_mac_case(tokens=16, layer=layer, linear=linear)
    a, w = case["a"], case["w"]
    assert a.shape == (16, K) and a.dtype == np.int8
    assert w.shape == (K, N) and w.dtype == np.int8
    assert case["a_scale"].shape == (16,) and case["a_scale"].dtype == np.float32
    assert case["w_scale"].shape == (N,) and case["w_scale"].dtype == np.float32
    assert np.count_nonzero(a) > a.size // 4 and np.count_nonzero(w) > w.size // 4
    # the integer GEMM approximates the float Linear
    acc = a.astype(np.int32) @ w.astype(np.int32)
    y_q = acc * case["a_scale"][:, None] * case["w_scale"][None, :]
    y = case["x"] @ case["w_f32"]
    assert np.abs(y_q - y).max() < 0.05 * np.abs(y).max()
    again = minilm.real_mac_case(tokens=16, layer=layer, linear=linear)
    for k in ("a", "w", "a_scale", "w_scale"):
        np.testing.assert_array_equal(case[k], again[k])


def test_attention_score_rows():
    d = minilm.attention_score_rows(rows=40, tokens=64, layer=None, chunks=2)
    p, imp = d["probs"], d["importance"]
    assert p.shape == (40, 64) and p.dtype == np.uint16
    assert d["probs_index"].shape == (40, 4)
    assert imp.shape == (2 * 6, 64) and imp.dtype == np.uint16
    assert d["ids"].shape == (2, 64)
    # each quantized row still sums to ~65535 (rounding error <= 1/2 per entry)
    sums = p.astype(np.int64).sum(axis=1)
    assert (np.abs(sums - 65535) <= 32).all()
    assert (imp.max(axis=1) == 65535).all()
    # rows come from several chunks, layers and heads
    assert len(set(d["probs_index"][:, 0])) == 2 and len(set(d["probs_index"][:, 1])) > 1
    # spot check one row against a direct forward pass
    c, l, h, i = d["probs_index"][5]
    tr = minilm.forward(d["ids"][c])
    np.testing.assert_array_equal(p[5], np.round(tr.layers[l].probs[h, i].astype(np.float64) * 65535))
    one = minilm.attention_score_rows(rows=8, tokens=64, layer=2, chunks=2)
    assert (one["probs_index"][:, 1] == 2).all() and one["importance"].shape == (2, 64)
    np.testing.assert_array_equal(one["importance"], imp[[2, 8]])
