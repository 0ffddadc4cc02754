"""Paper claims 1 and 2: Decode is memory-bound, Prefill compute-bound; batching raises
the arithmetic intensity of weight reads but not of KV-cache reads; and the attainable
fraction of peak FLOP/s in Decode falls across GPU generations (the memory wall).

Run: ``python experiments/decode_vs_prefill.py``. Uses only public diffhw names.
"""

import diffhw


def attainable_fraction(hw_name, model, batch, context):
    hw = diffhw.presets.hardware(hw_name)
    wl = diffhw.workload(batch, context, 2)
    r = diffhw.evaluate(hw, model, wl, diffhw.parallelism(tp=8))
    costs = diffhw.workload_costs(model, wl, diffhw.parallelism(tp=8))
    flops = costs["decode_step"]["per_chip"]["total"]["flops"]
    return flops / float(r.tpot_s) / float(hw.flop_per_s_bf16), r


def main():
    model = diffhw.presets.model("llama-3.1-70b")
    print("Llama-3.1-70B, 8 chips, TP 8, bf16\n")
    print("Decode vs Prefill on h100-sxm (which resource binds):")
    hw = diffhw.presets.hardware("h100-sxm")
    for batch, ctx in [(1, 2048), (64, 2048), (64, 32768), (512, 2048)]:
        r = diffhw.evaluate(hw, model, diffhw.workload(batch, ctx, 256), diffhw.parallelism(tp=8))
        pre = r.prefill
        pre_bound = "compute" if float(pre.compute_s) > float(pre.memory_s) else "memory"
        print(f"  batch {batch:4d}, context {ctx:6d}: decode bound by {diffhw.bound_name(r):13s}"
              f" TPOT {float(r.tpot_s) * 1e3:7.2f} ms; prefill bound by {pre_bound}")
    print("\nBatching amortises weights, not KV (decode step bytes per sequence, h100-sxm):")
    for batch in (1, 8, 64):
        c = diffhw.workload_costs(model, diffhw.workload(batch, 8192, 2))["decode_step"]["model"]["total"]
        print(f"  batch {batch:3d}: weights {c['weight_bytes'] / batch / 1e9:8.3f} GB/seq, "
              f"KV {c['kv_read_bytes'] / batch / 1e9:6.3f} GB/seq")
    print("\nThe memory wall: fraction of peak bf16 FLOP/s attained in Decode (batch 64, 4K context):")
    for name in ("a100-sxm-80gb", "h100-sxm", "h200-sxm", "b200"):
        frac, r = attainable_fraction(name, model, 64, 4096)
        hw = diffhw.presets.hardware(name)
        balance = float(hw.flop_per_s_bf16) / float(hw.memory_bandwidth_bytes_per_s)
        print(f"  {name:14s} FLOP/byte balance {balance:6.0f}   attained {frac:6.1%} of peak")


if __name__ == "__main__":
    main()
