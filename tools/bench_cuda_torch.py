#!/usr/bin/env python3
"""GPU peers for bench/bench_cuda.c (issue 8), on the same shapes and the same work, printed as one JSON object:

- decode: Hugging Face transformers `generate` on Qwen3ForCausalLM with random weights (sdpa attention, dynamic KV
  cache, do_sample with temperature 1, every sequence forced to NEW tokens), batch 64 and 256 after a PROMPT-token
  prompt; tokens/s = batch * NEW / wall time of the whole call (prefill included, as pionrl's number excludes it:
  see docs/PERFORMANCE.md for how the two are read).
- training: forward + backward of sum(w * log p(next token)) over B x T tokens, the same model in PyTorch eager, and
  under torch.compile when --compile is given and it works; best of 3 after a warm-up.
- optimizer: one torch.optim.Muon step (where this torch has it) over the decoder's matrices, plus fused AdamW over
  the rest (embeddings, norms), as a Muon user configures it; best of 3.

Precision: "fp32" has TF32 off (pionrl's device math is fp32 without TF32); "bf16" runs training under
torch.autocast(bfloat16) and decode with the model cast to bfloat16. Without transformers the decode rows are null
and training falls back to tools/torch_qwen.py (the CPU benchmarks' eager model).

usage: python3 tools/bench_cuda_torch.py V D F L HQ HKV HD B T PROMPT NEW [--compile] [--device cpu|cuda] [--quick]
"""
import json
import sys
import time

import torch

args = [a for a in sys.argv[1:] if not a.startswith("--")]
flags = [a for a in sys.argv[1:] if a.startswith("--")]
V, D, FF, L, HQ, HKV, HD, B, T, PROMPT, NEW = map(int, args[:11])
COMPILE = "--compile" in flags
QUICK = "--quick" in flags
DEVICE = "cpu" if "--device" in sys.argv and sys.argv[sys.argv.index("--device") + 1] == "cpu" else "cuda"
if DEVICE == "cuda" and not torch.cuda.is_available():
    print(json.dumps({"error": "torch sees no CUDA device", "torch_version": torch.__version__}))
    sys.exit(0)
torch.manual_seed(0)
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
out = {"torch_version": torch.__version__, "device": DEVICE,
       "gpu": torch.cuda.get_device_name(0) if DEVICE == "cuda" else None}


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def hf_model(dtype):
    try:
        import transformers
        from transformers import Qwen3Config, Qwen3ForCausalLM
    except ImportError:
        return None
    out["transformers_version"] = transformers.__version__
    cfg = Qwen3Config(vocab_size=V, hidden_size=D, intermediate_size=FF, num_hidden_layers=L,
                      num_attention_heads=HQ, num_key_value_heads=HKV, head_dim=HD, max_position_embeddings=40960,
                      rms_norm_eps=1e-6, rope_theta=1e6, tie_word_embeddings=True)
    with torch.device(DEVICE):
        model = Qwen3ForCausalLM(cfg).to(dtype)
    for p in model.parameters():
        torch.nn.init.normal_(p, 0.0, 0.02) if p.dim() == 2 else torch.nn.init.ones_(p)
    return model.eval()


def plain_model():
    sys.path.insert(0, "tools")
    from torch_qwen import Qwen3, init_normal
    model = Qwen3(V, D, FF, L, HQ, HKV, HD).to(DEVICE)
    init_normal(model, 0.02)
    return model


def logits_of(model, ids):
    o = model(ids)
    return o.logits if hasattr(o, "logits") else o


def time_train(model, autocast):
    ids = torch.randint(0, V, (B, T), device=DEVICE)
    w = torch.randn(B, T - 1, device=DEVICE)
    model.train()

    def step():
        model.zero_grad(set_to_none=True)
        with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=autocast):
            logits = logits_of(model, ids)[:, :-1]
        logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
        (w * logp).sum().backward()

    step()
    sync()
    best = float("inf")
    for _ in range(1 if QUICK else 3):
        t0 = time.perf_counter()
        step()
        sync()
        best = min(best, time.perf_counter() - t0)
    return B * T / best


@torch.no_grad()
def time_generate(model, batch):
    prompt = torch.randint(0, V, (batch, PROMPT), device=DEVICE)
    mask = torch.ones_like(prompt)
    kw = dict(do_sample=True, temperature=1.0, top_p=1.0, top_k=0, min_new_tokens=NEW, pad_token_id=0,
              eos_token_id=None)
    model.generate(prompt, attention_mask=mask, max_new_tokens=4, **{**kw, "min_new_tokens": 4})  # warm-up
    sync()
    t0 = time.perf_counter()
    gen = model.generate(prompt, attention_mask=mask, max_new_tokens=NEW, **kw)
    sync()
    dt = time.perf_counter() - t0
    assert gen.shape[1] == PROMPT + NEW, gen.shape
    return batch * NEW / dt


def time_optimizer(model):
    if not hasattr(torch.optim, "Muon"):
        return None
    mats = [p for n, p in model.named_parameters() if p.dim() == 2 and "embed" not in n and "lm_head" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.dim() == 2 and "embed" not in n and "lm_head" not in n)]
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    muon = torch.optim.Muon(mats, lr=0.02, momentum=0.95, nesterov=True)
    adamw = torch.optim.AdamW(rest, lr=1e-4, fused=DEVICE == "cuda")

    def step():
        muon.step()
        adamw.step()

    step()
    sync()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        step()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


for prec, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
    m = hf_model(torch.float32)
    base = m if m is not None else plain_model()
    out[prec + "_train_tokens_per_s"] = time_train(base, prec == "bf16")
    if COMPILE:
        try:
            out[prec + "_compiled_train_tokens_per_s"] = time_train(torch.compile(base), prec == "bf16")
        except Exception as e:  # noqa: BLE001 - the row is reported missing with the reason
            out[prec + "_compiled_error"] = str(e)[:200]
    if prec == "fp32":
        out["muon_adamw_step_ms"] = time_optimizer(base)
    base.zero_grad(set_to_none=True)
    del base
    if m is not None:
        m = m.to(dtype)
        for b in (64, 256):
            out["%s_decode_b%d_tokens_per_s" % (prec, b)] = time_generate(m, b)
        del m
    else:
        out[prec + "_decode_b64_tokens_per_s"] = out[prec + "_decode_b256_tokens_per_s"] = None
    if DEVICE == "cuda":
        torch.cuda.empty_cache()
print(json.dumps(out))
