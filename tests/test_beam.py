"""Beam search in the workload (issue 16): every beam is a Decode row, the prompt's KV is
stored once per request (and read once by grouped-query kernels, once per beam by
multi-head ones), each beam's generated KV is its own, Prefill runs once per request and
throughput counts one returned sequence per request."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffhw
from diffhw import presets
from diffhw._workload._operators import kv_bytes_per_chip, shards_for, step_ops

M, W, P, G = 16.0, 4.0, 800.0, 69.0  # requests, beams, prompt and generated tokens


@pytest.fixture(scope="module")
def gptj():
    return presets.model("gpt-j-6b")


@pytest.fixture(scope="module")
def gqa():
    return presets.model("llama-3.1-8b")


@pytest.fixture(scope="module")
def hw():
    return presets.hardware("h100-sxm")


def _wl(batch=M, beams=1.0):
    return diffhw.workload(batch, P, G, precision_="fp8", beam_width=beams)


@pytest.fixture(scope="module")
def runs(hw, gptj):
    """evaluate at beam 1, at beam 4, and at 4x the requests without beams (one program)."""
    par = diffhw.parallelism()
    return {k: diffhw.evaluate(hw, gptj, wl, par)
            for k, wl in (("one", _wl()), ("beams", _wl(beams=W)), ("wide", _wl(batch=M * W)))}


def _ops(model, **kw):
    return {name: op for name, _, op in step_ops(model, shards_for(model, 1.0, 1.0), M * W, M * W, P + 30.0,
                                                 1.0, 1.0, 1.0, decode=True, **kw)}


def test_beam_width_is_checked():
    assert float(diffhw.workload().beam_width) == 1.0
    for bad in (0.5, 0.0, float("nan"), float("inf")):
        with pytest.raises(diffhw.InputError, match="beam_width"):
            diffhw.workload(beam_width=bad)


@pytest.mark.parametrize("name", ["gpt-j-6b", "llama-3.1-8b"])
def test_one_beam_is_the_old_step_bit_for_bit(name):
    """beams = 1 takes the same arithmetic as before beams existed (the prompt term is
    multiplied by exactly 0), whatever prompt is passed."""
    gptj = presets.model(name)
    base, one = _ops(gptj), _ops(gptj, beams=1.0, prompt=P)
    for name in base:
        for f in ("flops", "kv_read_bytes", "kv_write_bytes", "act_bytes", "rows", "context_bytes"):
            assert np.array_equal(np.asarray(getattr(base[name], f)), np.asarray(getattr(one[name], f))), (name, f)
    s = shards_for(gptj, 1.0, 1.0)
    assert np.array_equal(kv_bytes_per_chip(gptj, s, 1.0, M, P + G, 1.0),
                          kv_bytes_per_chip(gptj, s, 1.0, M, P + G, 1.0, 1.0, G))


def test_step_reads_the_prompt_once_per_request(gqa, gptj):
    """Hand count for Llama-3.1-8B (32 heads, 8 KV heads: XQA shares the prompt's tiles):
    M requests of W beams at context P + 30 read ``M P + M W 30`` tokens of KV per layer,
    write ``M W``, score ``M W`` rows. GPT-J (multi-head) reads ``M W (P + 30)``."""
    ops = _ops(gqa, beams=W, prompt=P)
    flat = _ops(gqa)  # the same M W sequences as independent requests
    kv = float(gqa.kv_elements_per_token_per_layer(1.0))
    core = ops["attention_core"]
    assert float(core.kv_read_bytes) == pytest.approx((M * P + M * W * 30.0) * kv, rel=1e-12)
    assert float(flat["attention_core"].kv_read_bytes) == pytest.approx(M * W * (P + 30.0) * kv, rel=1e-12)
    assert float(core.kv_write_bytes) == pytest.approx(M * W * kv, rel=1e-12)
    assert float(core.rows) == 4 * W  # the beams' queries stack as rows of the shared tiles
    assert float(ops["lm_head"].flops) == pytest.approx(2 * 4096 * float(gqa.vocab_size) * M * W, rel=1e-12)
    for name in ops:  # the FLOPs are those of M W sequences
        assert float(ops[name].flops) == pytest.approx(float(flat[name].flops), rel=1e-12)
    mha, mha_flat = _ops(gptj, beams=W, prompt=P)["attention_core"], _ops(gptj)["attention_core"]
    assert float(mha.kv_read_bytes) == float(mha_flat.kv_read_bytes) and float(mha.rows) == 1.0


def test_kv_storage_prompt_once_generated_per_beam(gptj):
    s = shards_for(gptj, 1.0, 1.0)
    per_token = gptj.n_layers * float(gptj.kv_elements_per_token_per_layer(1.0))
    got = kv_bytes_per_chip(gptj, s, 1.0, M, P + G, 1.0, W, G)
    assert float(got) == pytest.approx(M * (P + W * G) * per_token, rel=1e-12)
    # a sliding window holds at most its window per beam (gpt-oss: 128-token windows)
    oss = presets.model("gpt-oss-120b")
    so = shards_for(oss, 1.0, 1.0)
    one, beams = (kv_bytes_per_chip(oss, so, 1.0, 1.0, P + 500.0, 1.0, b, 500.0) for b in (1.0, W))
    per = float(oss.kv_elements_per_token_per_layer(1.0))
    full = sum(c for sliding, _, c in oss.layer_groups if not sliding)
    windowed = sum(c for sliding, _, c in oss.layer_groups if sliding)
    expect = (W - 1) * per * (full * 500.0 + windowed * float(oss.sliding_window))
    assert float(beams - one) == pytest.approx(expect, rel=1e-2)


def test_evaluate_with_beams(runs, gptj):
    one, beams, wide = runs["one"], runs["beams"], runs["wide"]
    assert float(beams.ttft_s) == float(one.ttft_s)  # Prefill once per request
    kv_token = gptj.n_layers * float(gptj.kv_elements_per_token_per_layer(1.0))  # fp8 KV: 1 byte
    assert float(beams.kv_cache_bytes - one.kv_cache_bytes) == pytest.approx(M * (W - 1) * G * kv_token, rel=1e-9)
    # four beams cost more than one sequence; GPT-J's multi-head kernel reads the prompt
    # per beam, so a step costs what four requests' does (stored once, though)
    assert float(one.tpot_s) < float(beams.tpot_s)
    assert float(beams.tpot_s) == pytest.approx(float(wide.tpot_s), rel=1e-9)
    # one returned sequence per request
    assert float(beams.output_tokens_per_s) == pytest.approx(M * G / float(beams.e2e_latency_s), rel=1e-9)
    assert float(beams.decode_tokens_per_s) == pytest.approx(M / float(beams.tpot_s), rel=1e-9)
    assert float(beams.max_batch) < float(one.max_batch)


def test_max_batch_with_beams_fits(hw, gptj, runs):
    b = float(runs["beams"].max_batch)
    r = diffhw.evaluate(hw, gptj, _wl(batch=b, beams=W), diffhw.parallelism())
    assert float(r.memory_margin) >= 0.0


def test_workload_costs_count_beams(gqa):
    one = diffhw.workload_costs(gqa, _wl())
    beams = diffhw.workload_costs(gqa, _wl(beams=W))
    wide = diffhw.workload_costs(gqa, _wl(batch=M * W))
    step = beams["decode_step"]["model"]["total"]
    assert step["flops"] == pytest.approx(wide["decode_step"]["model"]["total"]["flops"], rel=1e-12)
    assert step["kv_read_bytes"] < wide["decode_step"]["model"]["total"]["kv_read_bytes"]
    per = beams["decode_per_output_token"]["model"]
    assert per["flops"] == pytest.approx(W * one["decode_per_output_token"]["model"]["flops"], rel=1e-12)
    assert beams["prefill_pass"] == one["prefill_pass"]


def test_gradient_in_beam_width(hw, gptj):
    par = diffhw.parallelism()

    def tpot(w):
        return diffhw.evaluate(hw, gptj, dataclasses.replace(_wl(), beam_width=w), par).tpot_s

    g = jax.jit(jax.grad(tpot))(jnp.asarray(W))
    assert jnp.isfinite(g) and float(g) > 0


def test_cli_beam_width(_cli):
    args = ("--model", "gpt-j-6b", "--chips", "1", "--input-tokens", "800", "--output-tokens", "69",
            "--precision", "fp8")
    r1, r4 = (_cli("evaluate", *args, "--batch", "16", "--json", *beam) for beam in ((), ("--beam-width", "4")))
    assert r1.returncode == 0 and r4.returncode == 0, r4.stderr
    d1, d4 = json.loads(r1.stdout), json.loads(r4.stdout)
    assert d1["beam_width"] == 1.0 and d4["beam_width"] == 4.0 and d4["tpot_s"] > d1["tpot_s"]
    for cmd, value, words in (("evaluate", "0", "between 1 and 1024"), ("evaluate", "2.5", "whole number"),
                              ("serve", "4", "1 with serving")):
        extra = ("--request-rate", "1") if cmd == "serve" else ()
        r = _cli(cmd, *args, "--beam-width", value, *extra)
        assert r.returncode == 2 and "--beam-width" in r.stderr and words in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
