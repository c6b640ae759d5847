import numpy as np

from dysan import codegen, contract
from dysan.preprocess import Normalization, quantize_input


def test_to_counts_rounds_half_away_and_saturates():
    sig = np.array([[0.5 / 2048, -0.5 / 2048, 1.0, 100.0, -100.0, 1.0 / 512]])
    c = contract.to_counts(sig)
    assert c.dtype == np.int16
    assert c.tolist() == [[1, -1, 2048, 32767, -32768, 1]]
    back = contract.from_counts(c)
    assert abs(back[0, 2] - 1.0) < 1e-6


def test_generated_c_files_are_fresh():
    assert codegen.stale() == [], "run `dysan codegen` (make codegen) and commit the result"


def test_contract_header_carries_the_python_values():
    text = codegen.render("firmware/core/include/dysan_contract.h")
    assert f"#define DYSAN_WINDOW {contract.WINDOW}" in text
    assert f"#define DYSAN_HOP {contract.HOP}" in text
    for i, name in enumerate(contract.CHANNELS):
        assert f"DYSAN_CH_{name.upper()} = {i}" in text


def test_input_quantization_matches_float_rounding():
    rng = np.random.default_rng(0)
    counts = rng.integers(-6000, 6000, size=(200, contract.N_CHANNELS)).astype(np.int16)
    norm = Normalization(center=(10, -2048, 5, 0, 3, -1), scale=(400.0, 350.0, 300.0, 250.0, 200.0, 150.0))
    s_in, zp = 0.031, -3
    q = quantize_input(counts, norm.center, norm.multipliers(s_in), zp)
    ref = np.clip(np.floor(norm.normalize(counts).astype(np.float64) / s_in + 0.5) + zp, -128, 127)
    # The integer multiplier is rounded to 2^-20 relative precision: at most 1 LSB apart, and rarely.
    diff = np.abs(q.astype(int) - ref.astype(int))
    assert diff.max() <= 1
    assert (diff == 0).mean() > 0.99
