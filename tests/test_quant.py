"""golden/quant.py against hand-computed values, plain NumPy references and the papers'
guarantees (papers.md §1 SpAtten, §4 QServe, §5 SVDQuant), on real MiniLM weights."""
import numpy as np
import pytest

from accelgen.golden import mac, quant
from accelgen.workloads import mac_cases, minilm


def rel(y, ref) -> float:
    return float(np.linalg.norm(np.asarray(y, np.float64) - ref) / np.linalg.norm(ref))


@pytest.fixture(scope="module")
def ffn2_w():
    return minilm.linear_weight(0, "ffn2").astype(np.float64)  # [1536, 384]


@pytest.fixture(scope="module")
def q_case():
    case = minilm.real_mac_case(32, 0, "q")
    return case["x"].astype(np.float64), case["w_f32"].astype(np.float64)


# --------------------------------------------------------------------------- QServe W4A8
def test_qserve_weight_hand_example():
    # s1 = (119/8) / 119 = 1/8, T = [119, -59.5, 30, 0]: s2 = round(178.5/15) = 12,
    # z = round(59.5) = 60 (half to even), q = round([179, 0.5, 90, 60] / 12) with 7.5 -> 8
    wq = quant.qserve_weight(np.array([[119], [-59.5], [30], [0]]) / 8, group=4)
    assert wq["s1"].dtype == np.float32 and wq["s1"].tolist() == [0.125]
    assert wq["s2"].tolist() == [[12]] and wq["z"].tolist() == [[60]]
    assert wq["q"][:, 0].tolist() == [15, 0, 8, 5]


def test_qserve_weight_ranges_and_dequantization_on_real_weights(ffn2_w):
    wq = quant.qserve_weight(ffn2_w)
    assert (wq["q"].dtype, wq["s2"].dtype, wq["z"].dtype) == (np.uint8, np.uint8, np.int8)
    q, s2, z = (wq[k].astype(np.int64) for k in ("q", "s2", "z"))
    assert s2.shape == z.shape == (1536 // 128, 384)
    assert 0 <= q.min() and q.max() <= 15 and 1 <= s2.min() and s2.max() <= 127
    np.testing.assert_allclose(wq["s1"], np.abs(ffn2_w).max(axis=0) / 119, rtol=1e-7)
    qs2 = q * np.repeat(s2, 128, axis=0)
    assert qs2.max() <= 240  # QServe's guarantee: one unsigned byte, no carry
    w8 = qs2 - np.repeat(z, 128, axis=0)
    assert -128 <= w8.min() and w8.max() <= 127
    assert np.array_equal(mac.w4a8_weights(wq["q"], wq["s2"], wq["z"], 128), w8)
    # round to nearest: |W8 - T| <= s2 / 2 wherever q did not saturate at 0 or 15
    t = np.clip(ffn2_w / wq["s1"], -119, 119)
    s2_k = np.repeat(s2, 128, axis=0)
    raw = (t + np.repeat(z, 128, axis=0)) / s2_k
    inside = (raw >= -0.5) & (raw <= 15.5)
    assert inside.mean() > 0.99
    assert np.all(np.abs(w8 - t)[inside] <= s2_k[inside] / 2 + 1e-9)
    assert rel(w8 * wq["s1"].astype(np.float64), ffn2_w) < 0.15


def test_per_token_int8_rounds_half_to_even_and_handles_zero_rows():
    x = np.array([[127, 0.5, 1.5, 2.5, -0.5, -2.5, -127],
                  [0, 0, 0, 0, 0, 0, 0],
                  [-3, 1, 1.5, 0, 0, 0, 0]], np.float32)
    q, sx = quant.per_token_int8(x)
    assert q.dtype == np.int8 and sx.dtype == np.float16
    assert q.tolist() == [[127, 0, 2, 2, 0, -2, -127], [0] * 7, [-127, 42, 64, 0, 0, 0, 0]]
    assert sx.tolist() == [1.0, 0.0, float(np.float16(3 / 127))]


def test_w4a8_epilogue_is_within_fp16_rounding_of_the_dequantized_product(q_case):
    x, w = q_case
    a, sx = quant.per_token_int8(x)
    wq = quant.qserve_weight(w)
    y = quant.qserve_epilogue(mac.matmul_w4a8(a, wq["q"], wq["s2"], wq["z"], 128), wq["s1"], sx)
    w8 = wq["q"] * np.repeat(wq["s2"].astype(np.int64), 128, axis=0) - np.repeat(wq["z"], 128, axis=0)
    ref = (a * sx.astype(np.float64)[:, None]) @ (w8 * wq["s1"].astype(np.float64))
    assert y.dtype == np.float16
    assert np.all(np.abs(y - ref) <= np.abs(ref) * 2.0 ** -11 + 2.0 ** -24)
    assert rel(y, x @ w) < 0.15


def test_w4a8_case_keeps_run_inputs_apart_from_extras():
    inputs, extras = mac_cases.w4a8_case(16, 0, "q")
    assert set(inputs) == {"a", "w_q", "w_s2", "w_z"}
    c = mac.matmul_w4a8(inputs["a"], inputs["w_q"], inputs["w_s2"], inputs["w_z"], extras["group"])
    y = quant.qserve_epilogue(c, extras["s1"], extras["sx"]) + extras["bias"]
    ref = extras["x"].astype(np.float64) @ extras["w_f32"] + extras["bias"]
    assert rel(y, ref) < 0.15


# --------------------------------------------------------------------------- SVDQuant W4A4
def test_svdquant_quantizers_on_real_values(ffn2_w, q_case):
    q, s = quant.svdquant_weight(ffn2_w)
    assert q.dtype == np.int8 and -7 <= q.min() and q.max() <= 7
    np.testing.assert_allclose(s, np.abs(ffn2_w).reshape(24, 64, 384).max(axis=1) / 7)
    s_k = np.repeat(s, 64, axis=0)
    assert np.all(np.abs(q * s_k - ffn2_w) <= s_k / 2 * (1 + 1e-12))
    x = q_case[0]
    a, sa = quant.svdquant_activation(x)
    assert a.dtype == np.int8 and -8 <= a.min() and a.max() <= 7 and sa.shape == (32, 6)
    sa_k = np.repeat(sa, 64, axis=1)
    assert np.all(np.abs(a * sa_k - x) <= sa_k / 2 * (1 + 1e-12))


def test_svdquant_activation_rounds_half_to_even_per_group():
    x = np.array([[7, 0.5, 1.5, 2.5, 14, -1, 3, 5]])
    a, sa = quant.svdquant_activation(x, group=4)  # scales 1 and 2
    assert sa.tolist() == [[1.0, 2.0]]
    assert a.tolist() == [[7, 0, 2, 2, 7, 0, 2, 2]]


def test_lowrank_factors_are_the_best_rank_r_approximation_of_the_residual(q_case):
    w = q_case[1]
    split = quant.svdquant_lowrank(w, rank=16, iterations=1)
    q0, s0 = quant.svdquant_weight(w)
    residual = w - q0 * np.repeat(s0, 64, axis=0)
    singular = np.linalg.svd(residual, compute_uv=False)
    low = split.down @ split.up
    assert split.down.shape == (384, 16) and split.up.shape == (16, 384)
    np.testing.assert_allclose(split.down.T @ split.down, np.eye(16), atol=1e-12)
    # Eckart-Young: the best rank-16 approximation leaves exactly the tail singular values
    np.testing.assert_allclose(np.linalg.norm(residual - low) ** 2, (singular[16:] ** 2).sum(),
                               rtol=1e-9)
    q1, s1 = quant.svdquant_weight(w - low)
    assert np.array_equal(split.q, q1) and np.array_equal(split.s, s1)


def test_lowrank_iterations_lower_the_weight_error(q_case):
    w = q_case[1]
    splits = [quant.svdquant_lowrank(w, 32, iterations=i) for i in (1, 2)]
    errors = [np.linalg.norm(w - sp.q * np.repeat(sp.s, 64, axis=0) - sp.down @ sp.up)
              for sp in splits]
    np.testing.assert_allclose(errors, [sp.error for sp in splits])
    plain = quant.svdquant_lowrank(w, 0)
    assert plain.down.shape == (384, 0) and errors[0] < plain.error
    assert errors[1] <= errors[0]


@pytest.fixture(scope="module")
def w4a4(q_case):
    ops = quant.w4a4_operands(*q_case, rank=32)
    return ops, *quant.w4a4_fixed_point(ops)


def float_reference(ops) -> np.ndarray:
    """The quantized operands in float64, group by group: sum_g (A_g W_g) sa sw + (x L1^T) L2^T."""
    y = (ops.x @ ops.down) @ ops.up
    for g in range(ops.sa.shape[1]):
        cols = slice(64 * g, 64 * g + 64)
        y += (ops.a[:, cols].astype(np.float64) @ ops.w[cols]) * np.outer(ops.sa[:, g], ops.sw[g])
    return y


def check_contract(inputs: dict, f: int, rank: int):
    assert inputs["a"].dtype == inputs["w"].dtype == np.int8
    assert -8 <= inputs["a"].min() and inputs["a"].max() <= 7
    assert -8 <= inputs["w"].min() and inputs["w"].max() <= 7
    assert inputs["a_scale"].dtype == inputs["w_scale"].dtype == np.uint16
    assert inputs["lr_u"].dtype == inputs["lr_l2"].dtype == np.int16
    assert inputs["lr_u"].shape[1] == inputs["lr_l2"].shape[0] == rank
    scale = inputs["lr_scale"]
    assert isinstance(scale, int) and 1 <= scale <= 65535 and scale & (scale - 1) == 0
    assert isinstance(f, int)


def test_w4a4_fixed_point_inputs_use_the_whole_range(w4a4):
    _, inputs, f = w4a4
    check_contract(inputs, f, 32)
    # largest exponents: one more bit would overflow
    assert inputs["a_scale"].max() >= 32768 and inputs["w_scale"].max() >= 32768
    assert np.abs(inputs["lr_u"].astype(np.int64)).max() >= 16384
    assert np.abs(inputs["lr_l2"].astype(np.int64)).max() >= 16384


def test_w4a4_fixed_point_equals_the_float_evaluation_of_the_same_operands(w4a4):
    ops, inputs, f = w4a4
    y = quant.w4a4_output(mac.matmul_w4a4(**inputs, group=64), f)
    assert rel(y, float_reference(ops)) < 1e-3


def test_w4a4_rank_zero_has_no_low_rank_inputs(q_case):
    inputs, f = quant.w4a4_inputs(*q_case, rank=0)
    assert set(inputs) == {"a", "w", "a_scale", "w_scale"}
    ops = quant.w4a4_operands(*q_case, rank=0)
    y = quant.w4a4_output(mac.matmul_w4a4(**inputs, group=64), f)
    assert rel(y, float_reference(ops)) < 1e-3


@pytest.mark.parametrize("scales, lows", [(1e-6, 1e3), (1e3, 1e-3)])
def test_w4a4_exponents_are_lowered_to_keep_lr_scale_in_range(scales, lows):
    rng = np.random.default_rng(0)
    ops = quant.W4A4Operands(
        a=rng.integers(-8, 8, (4, 128)).astype(np.int8), sa=rng.uniform(0.5, 1, (4, 2)) * scales,
        w=rng.integers(-7, 8, (128, 8)).astype(np.int8), sw=rng.uniform(0.5, 1, (2, 8)) * scales,
        x=rng.uniform(-1, 1, (4, 128)) * lows, down=rng.uniform(-1, 1, (128, 2)) / 10,
        up=rng.uniform(-1, 1, (2, 8)) * lows, group=64)
    inputs, f = quant.w4a4_fixed_point(ops)
    check_contract(inputs, f, 2)
    y = quant.w4a4_output(mac.matmul_w4a4(**inputs, group=64), f)
    assert rel(y, float_reference(ops)) < 1e-3


def test_w4a4_accumulation_error_against_exact_float_and_nunchaku_fp16(w4a4):
    ops, inputs, f = w4a4
    exact = float_reference(ops)
    hardware = quant.w4a4_output(mac.matmul_w4a4(**inputs, group=64), f)
    fp16 = quant.w4a4_nunchaku_fp16(ops)
    assert fp16.dtype == np.float16
    errors = {"hardware vs exact": rel(hardware, exact), "fp16 vs exact": rel(fp16, exact),
              "hardware vs fp16": rel(hardware, fp16.astype(np.float64))}
    print("W4A4 + LR32, MiniLM layer 0 q:", errors)
    # fp16 keeps 11 significant bits; the fixed-point scales keep 16
    assert errors["hardware vs exact"] < 1e-4 < errors["fp16 vs exact"] < 2e-3, errors


def test_w4a4_case_runs_on_the_hardware_golden():
    inputs, f, extras = mac_cases.w4a4_case(16, 0, "q", rank=16)
    check_contract(inputs, f, 16)
    y = quant.w4a4_output(mac.matmul_w4a4(**inputs, group=extras["group"]), f) + extras["bias"]
    ref = extras["x"].astype(np.float64) @ extras["w_f32"] + extras["bias"]
    assert rel(y, ref) < 0.25


# --------------------------------------------------------------------------- error study
def test_error_ordering_on_a_real_layer(q_case, w4a4):
    x, w = q_case
    ref = x @ w
    w4a4_plain = quant.w4a4_hardware(quant.w4a4_operands(x, w, rank=0))
    errors = [rel(y, ref) for y in (quant.w8a8_output(x, w), quant.w4a8_output(x, w),
                                    w4a4_plain, quant.w4a4_hardware(w4a4[0]))]
    print("MiniLM layer 0 q, W8A8 / W4A8 / W4A4 / W4A4 + LR32:", errors)
    assert errors[0] < errors[1] < errors[2]
    assert errors[3] < errors[2]  # SVDQuant's low-rank branch helps on this layer


# --------------------------------------------------------------------------- SpAtten
def test_msb_lsb_case_on_a_real_head():
    inputs, extras = mac_cases.msb_lsb_case(64, layer=0, head=0)
    a, b, rows = inputs["a"], inputs["b"], inputs["lsb_rows"]
    assert a.dtype == np.int8 and a.shape == (64, 32) and b.shape == (32, 64)
    assert -128 <= a.min() and a.max() <= 127 and -2048 <= b.min() and b.max() <= 2047
    assert rows.dtype == bool and 0 < rows.sum() < 64
    a64, b64 = a.astype(np.int64), b.astype(np.int64)
    msb_only = a64 @ (b64 - np.mod(b64, 16))
    c = mac.matmul_msb_lsb(a, b, rows)
    assert np.array_equal(c[rows], (a64 @ b64)[rows])
    assert np.array_equal(c[~rows], msb_only[~rows])
    # the LSB request: max softmax probability of the MSB-only scores below 0.1
    e = np.exp(msb_only * extras["score_scale"])
    assert np.array_equal(rows, (e / e.sum(axis=1, keepdims=True)).max(axis=1) < 0.1)
    assert np.abs(extras["probs_msb"] - extras["probs_float"]).max() < 0.02
