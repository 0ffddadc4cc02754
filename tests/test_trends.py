"""diffhw.trends: the paper's six trends as workload transforms, the Workload fields they
need (block diffusion, a modality encoder), and workload_costs counting the shared context."""

import dataclasses

import jax
import pytest

import diffhw
from diffhw import presets, trends
from diffhw._timing import _latency


@pytest.fixture(scope="module")
def dense():
    return presets.model("llama-3.1-8b")


@pytest.fixture(scope="module")
def hw():
    return presets.hardware("h100-sxm")


@pytest.fixture(scope="module")
def wl():
    return diffhw.workload(16, 1024, 128)


def test_value_trends_change_what_they_document(dense, wl):
    _, r, _ = trends.reasoning(dense, wl)
    assert float(r.output_tokens) == 128 + 10_000 and float(r.input_tokens) == 1024
    _, lc, _ = trends.long_context(dense, wl)
    assert float(lc.input_tokens) == 131_072 - 128  # the window, less the output
    assert float(trends.long_context(dense, lc, context_tokens=1000).workload.input_tokens) == 131_072 - 128  # kept
    _, rag, _ = trends.rag(dense, wl)
    assert float(rag.input_tokens) == 1024 + 10 * 512 and float(rag.shared_context_tokens) == 100_000
    _, mm, _ = trends.multimodal(dense, wl)
    assert float(mm.input_tokens) == 1024 + 8 * 576 and float(mm.encoder_tokens) == 8 * 576
    assert float(mm.encoder_params) == 304e6
    _, df, _ = trends.diffusion(dense, wl, block_tokens=16, denoising_steps=4)
    assert float(df.decode_block_tokens) == 16 and float(df.denoising_steps) == 4
    # the baseline is untouched, and the structure is kept (no new compile)
    assert float(wl.output_tokens) == 128
    assert jax.tree_util.tree_structure(df) == jax.tree_util.tree_structure(wl)


def test_moe_keeps_active_params_and_multiplies_stored_ones(dense, wl):
    par = diffhw.parallelism(tp=4, dp=2)
    m, w, p = trends.moe(dense, wl, par)
    assert (m.n_experts, m.experts_per_token, m.n_shared_experts) == (256, 8, 1)
    assert m.n_dense_layers == 3 and m.n_moe_layers == dense.n_layers - 3
    # equal active parameters but for the router (d_model * 256 per MoE layer)
    router = float(m.n_moe_layers * m.d_model * 256)
    assert float(m.active_params()) - router == pytest.approx(float(dense.active_params()), rel=1e-9)
    ffn = float(dense.ffn_params()) * m.n_moe_layers
    assert float(m.total_params()) - float(dense.total_params()) - router == pytest.approx(ffn * (257 / 9 - 1),
                                                                                           rel=1e-9)
    assert float(p.ep) == 8 and float(p.tp) == 4 and w is wl
    diffhw.validate_parallelism(m, p)
    with pytest.raises(diffhw.InputError, match="dense model"):
        trends.moe(m, wl)
    with pytest.raises(diffhw.InputError, match="whole number"):
        trends.moe(dense, wl, experts=2.5)


def test_apply_composes_by_name_spec_pair_and_function(dense, wl):
    a = trends.apply(dense, wl, ["moe", "long_context"])
    b = trends.long_context(*trends.moe(dense, wl))
    assert a.model.n_experts == b.model.n_experts and float(a.workload.input_tokens) == float(b.workload.input_tokens)
    c = trends.apply(dense, wl, ["rag:shared_tokens=1e6,passages=2", ("reasoning", {"hidden_tokens": 500}),
                                 trends.diffusion])
    assert float(c.workload.shared_context_tokens) == 1e6 and float(c.workload.input_tokens) == 1024 + 1024
    assert float(c.workload.output_tokens) == 628 and float(c.workload.denoising_steps) == 32
    assert c.parallelism is None
    assert trends.parse("long-context:context_tokens=65536") == ("long_context", {"context_tokens": 65536.0})
    assert trends.parameters("diffusion") == {"block_tokens": 32.0, "denoising_steps": 32.0}
    for bad, match in (("moe2", "one of moe"), ("rag:shared=1", "shared_tokens"), ("rag:passages=x", "a number"),
                       ("diffusion:denoising_steps=0.5", ">= 1")):
        with pytest.raises(diffhw.InputError, match=match):
            trends.apply(dense, wl, [bad])


def test_diffusion_reads_weights_s_over_b_and_does_s_times_the_flops(dense, wl):
    ar = diffhw.workload_costs(dense, wl)["decode_per_output_token"]["model"]
    _, df, _ = trends.diffusion(dense, wl, block_tokens=32, denoising_steps=8)
    d = diffhw.workload_costs(dense, df)
    per = d["decode_per_output_token"]["model"]
    assert per["flops"] == pytest.approx(8 * ar["flops"], rel=1e-9)
    assert per["weight_bytes"] == pytest.approx(ar["weight_bytes"] * 8 / 32, rel=1e-9)
    assert per["kv_read_bytes"] == pytest.approx(ar["kv_read_bytes"] * 8 / 32, rel=1e-9)
    # one step is one pass over 32 tokens of each of the 16 sequences
    step = d["decode_step"]["model"]["total"]
    assert step["flops"] == pytest.approx(per["flops"] * 16 * 32 / 8, rel=1e-9)


def test_diffusion_in_evaluate(dense, hw, wl):
    par = diffhw.parallelism()
    base = diffhw.evaluate(hw, dense, wl, par)
    same = diffhw.evaluate(hw, dense, trends.diffusion(dense, wl, block_tokens=1, denoising_steps=1).workload, par)
    assert float(same.tpot_s) == float(base.tpot_s)  # B = S = 1 is autoregressive Decode
    assert diffhw.bound_name(base) == "memory"
    df = diffhw.evaluate(hw, dense, trends.diffusion(dense, wl).workload, par)
    assert diffhw.bound_name(df) == "compute"
    # S = B: the weights are read as often as in autoregressive Decode, the FLOPs 32x
    assert float(df.decode.memory_s) < 3 * float(base.decode.memory_s)
    assert float(df.decode.compute_s) > 10 * float(base.decode.compute_s)
    fast = diffhw.evaluate(hw, dense, trends.diffusion(dense, wl, denoising_steps=8).workload, par)
    assert float(fast.tpot_s) == pytest.approx(float(df.tpot_s) * 8 / 32, rel=1e-6)

    def tpot(steps):
        w = dataclasses.replace(wl, decode_block_tokens=32.0, denoising_steps=steps)
        return diffhw.evaluate(hw, dense, w, par).tpot_s

    g = jax.jit(jax.grad(tpot))(16.0)
    assert jax.numpy.isfinite(g) and float(g) > 0


def test_multimodal_encoder_in_prefill_and_memory(dense, hw, wl):
    par = diffhw.parallelism(tp=2)
    _, mm, _ = trends.multimodal(dense, wl, images=2)
    text = dataclasses.replace(mm, encoder_params=0.0, encoder_tokens=0.0)  # same prompt, no encoder
    a, b = diffhw.evaluate(hw, dense, mm, par), diffhw.evaluate(hw, dense, text, par)
    assert float(a.weight_bytes) - float(b.weight_bytes) == pytest.approx(304e6 * 2 / 2, rel=1e-6)
    enc_flops = 2 * 304e6 / 2 * 16 * 2 * 576  # per tensor-parallel rank, the whole batch's images
    peak = float(hw.peak_flop_per_s(mm.activation_precision))
    assert float(a.ttft_s) - float(b.ttft_s) >= 0.9 * enc_flops / peak
    assert float(a.tpot_s) == pytest.approx(float(b.tpot_s), rel=1e-9)
    pre = diffhw.workload_costs(dense, mm)["prefill_pass"]["model"]
    assert pre["ops"][0]["name"] == "encoder"
    assert pre["ops"][0]["flops"] == pytest.approx(2 * 304e6 * 16 * 2 * 576, rel=1e-9)

    def ttft(p):
        return diffhw.evaluate(hw, dense, dataclasses.replace(mm, encoder_params=p), par).ttft_s

    g = jax.jit(jax.grad(ttft))(304e6)
    assert jax.numpy.isfinite(g) and float(g) > 0


def test_new_fields_are_checked():
    with pytest.raises(diffhw.InputError, match="denoising_steps"):
        diffhw.workload(1, 16, 16, denoising_steps=0.5)
    with pytest.raises(diffhw.InputError, match="encoder_params"):
        diffhw.workload(1, 16, 16, encoder_params=-1)


def test_workload_costs_count_the_shared_context_as_evaluate_does():
    """DeepSeek-V3 with a 100K-token shared context: Decode FLOPs rise and the context is
    read once per step, and the per-chip FLOPs and bytes equal evaluate's Decode work at
    the same context."""
    ds = presets.model("deepseek-v3")
    par = diffhw.parallelism(tp=8, ep=8)
    plain = diffhw.workload(8, 1000, 200, "fp8")
    shared = diffhw.workload(8, 1000, 200, "fp8", shared_context_tokens=100_000)
    c0 = diffhw.workload_costs(ds, plain, par)["decode_step"]
    c1 = diffhw.workload_costs(ds, shared, par)["decode_step"]
    assert c1["model"]["total"]["flops"] > 1.5 * c0["model"]["total"]["flops"]
    ctx = 100_000 * (512 + 64) * 1.0 * ds.n_layers  # MLA latent + rope key, fp8, every layer
    assert c1["model"]["total"]["context_bytes"] == pytest.approx(ctx, rel=1e-6)
    assert c0["model"]["total"]["context_bytes"] == 0.0
    hw = presets.hardware("b200")
    _, work = _latency.decode_step(hw, ds, shared, par, 1000 + 200 / 2)
    chip = c1["per_chip"]["total"]
    assert chip["flops"] == pytest.approx(float(work.flops), rel=1e-6)
    assert chip["bytes"] == pytest.approx(float(work.memory_bytes), rel=1e-6)


def test_long_context_fills_a_known_window(wl):
    """A prompt grown past the model's window would be a request the model cannot take."""
    m = presets.model("llama-3.1-8b")  # 131,072-token window
    _, w, _ = trends.long_context(m, wl)
    assert float(w.input_tokens) + float(w.output_tokens) == m.max_context
    _, w, _ = trends.long_context(m, wl, context_tokens=50_000)
    assert float(w.input_tokens) == 50_000


def _run(cli, *args):
    r = cli(*args)
    return r.returncode, r.stdout, r.stderr


def test_cli_trend(_cli):
    import json

    code, out, err = _run(_cli, "evaluate", "--model", "llama-3.1-8b", "--chips", "1", "--batch", "4",
                         "--trend", "reasoning:hidden_tokens=1000", "--trend", "rag:shared_tokens=2e4", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["trends"] == ["reasoning:hidden_tokens=1000", "rag:shared_tokens=2e4"]
    assert d["output_tokens"] == 256 + 1000 and d["input_tokens"] == 2048 + 10 * 512
    code, out, err = _run(_cli, "serve", "--model", "llama-3.1-8b", "--chips", "1", "--request-rate", "0.5",
                         "--trend", "rag", "--json")
    assert code == 0, err
    assert json.loads(out)["input_tokens"] == 2048 + 10 * 512  # serve's traffic carries the trend
    for args, words in ((("evaluate", "--trend", "bogus"), "one of moe"),
                        (("evaluate", "--trend", "rag:foo=1"), "passages"),
                        (("evaluate", "--model", "llama-3.1-8b", "--trend", "rag:shared_tokens=1e6"), "window"),
                        (("serve", "--request-rate", "1", "--trend", "diffusion"), "without --serving")):
        code, out, err = _run(_cli, *args)
        assert code == 2 and "--trend" in err and words in err and "Traceback" not in err, err
