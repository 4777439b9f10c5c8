#!/usr/bin/python3
"""Writes the tiny Qwen2/Qwen3 reference fixtures under tests/fixtures/ (run from the repo root with
/usr/bin/python3, which has torch; no transformers or safetensors package is needed).

For each model (qwen3-tiny, qwen2-tiny, qwen3-tiny-wide): config.json (Hugging Face format),
model.safetensors (random fp32 weights) and reference.safetensors with tokens, logits, per-token log-probs and entropy, a weighted log-prob loss
and the gradient of that loss for every parameter, plus a few intermediate activations for
debugging. The forward follows transformers' modeling_qwen3 / modeling_qwen2 and is computed in
float64 on the fp32-rounded weights, so every reference is exact up to the final fp32 rounding.

usage: /usr/bin/python3 tools/make_qwen_fixtures.py [--out tests/fixtures]
       /usr/bin/python3 tools/make_qwen_fixtures.py --check DIR [--reference FIXTURE_DIR]
The second form reads a model directory written by pionrl (config.json + model.safetensors, any
float dtype), runs this file's PyTorch forward on the reference tokens and prints the largest logit
difference from the fixture's reference (0 up to fp32 rounding for an F32 save of a fixture).
"""
import argparse
import json
import os
import struct

import torch

B, T = 3, 16


# ---------------------------------------------------------------------------------------------
# minimal safetensors writer (the format: u64 header length, JSON header, raw little-endian data)

ST_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.bfloat16: "BF16", torch.float16: "F16",
             torch.int32: "I32", torch.int64: "I64"}


def tensor_bytes(t):
    t = t.contiguous().cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()  # numpy has no bfloat16: reinterpret the bits
    return t.numpy().tobytes()


def save_safetensors(path, tensors, metadata=None):
    header = {"__metadata__": dict(metadata or {}, format="pt")}
    blobs, at = [], 0
    for name, t in tensors.items():
        data = tensor_bytes(t)
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [at, at + len(data)]}
        blobs.append(data)
        at += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def load_safetensors(path):
    """Reads a safetensors file into a dict of torch tensors (strict about the basics only)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base, out = 8 + n, {}
    np_types = {"F32": "float32", "F64": "float64", "F16": "float16", "BF16": "int16", "I32": "int32",
                "I64": "int64"}
    import numpy as np
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        t = torch.from_numpy(np.frombuffer(data[base + b:base + e], dtype=np_types[info["dtype"]]).copy())
        if info["dtype"] == "BF16":
            t = t.view(torch.bfloat16)
        out[name] = t.reshape(info["shape"])
    return out


# ---------------------------------------------------------------------------------------------
# model definition (Hugging Face names)

def make_config(arch):
    common = {
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 64,
        "initializer_range": 0.02,
        "intermediate_size": 96,
        "max_position_embeddings": 256,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "sliding_window": None,
        "torch_dtype": "float32",
        "transformers_version": "4.51.0",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": 128,
    }
    if arch == "qwen3":
        return dict(common, architectures=["Qwen3ForCausalLM"], model_type="qwen3", head_dim=16,
                    attention_bias=False, rope_theta=1000000.0, tie_word_embeddings=True, max_window_layers=2)
    return dict(common, architectures=["Qwen2ForCausalLM"], model_type="qwen2", rope_theta=10000.0,
                tie_word_embeddings=False, max_window_layers=2)


def param_shapes(cfg):
    """(name, shape, kind) in the order transformers lists them; kind: matrix / norm / bias."""
    D, F, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    Hq, Hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim", D // Hq)
    qwen3 = cfg["model_type"] == "qwen3"
    out = [("model.embed_tokens.weight", (V, D), "matrix")]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        out += [(p + "self_attn.q_proj.weight", (Hq * hd, D), "matrix"),
                (p + "self_attn.k_proj.weight", (Hkv * hd, D), "matrix"),
                (p + "self_attn.v_proj.weight", (Hkv * hd, D), "matrix")]
        if not qwen3:
            out += [(p + "self_attn.q_proj.bias", (Hq * hd,), "bias"),
                    (p + "self_attn.k_proj.bias", (Hkv * hd,), "bias"),
                    (p + "self_attn.v_proj.bias", (Hkv * hd,), "bias")]
        out += [(p + "self_attn.o_proj.weight", (D, Hq * hd), "matrix")]
        if qwen3:
            out += [(p + "self_attn.q_norm.weight", (hd,), "norm"), (p + "self_attn.k_norm.weight", (hd,), "norm")]
        out += [(p + "mlp.gate_proj.weight", (F, D), "matrix"), (p + "mlp.up_proj.weight", (F, D), "matrix"),
                (p + "mlp.down_proj.weight", (D, F), "matrix"),
                (p + "input_layernorm.weight", (D,), "norm"), (p + "post_attention_layernorm.weight", (D,), "norm")]
    out += [("model.norm.weight", (D,), "norm")]
    if not cfg["tie_word_embeddings"]:
        out += [("lm_head.weight", (V, D), "matrix")]
    return out


def random_weights(cfg, gen):
    w = {}
    for name, shape, kind in param_shapes(cfg):
        z = torch.randn(shape, generator=gen, dtype=torch.float32)
        if kind == "matrix":
            w[name] = 0.1 * z
        elif kind == "norm":
            w[name] = 1.0 + 0.1 * z  # away from 1 so a forgotten norm weight shows up
        else:
            w[name] = 0.05 * z
    return w


# ---------------------------------------------------------------------------------------------
# forward (float64), following transformers' modeling_qwen3 / modeling_qwen2

def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def forward(cfg, w, tokens, acts):
    D, Hq, Hkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim", D // Hq)
    eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
    qwen3 = cfg["model_type"] == "qwen3"
    Bn, Tn = tokens.shape
    x = w["model.embed_tokens.weight"][tokens]  # [B, T, D]
    acts["act.embed"] = x
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    freqs = torch.outer(torch.arange(Tn, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()  # [T, hd]
    causal = torch.ones(Tn, Tn, dtype=torch.bool).tril()
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = h @ w[p + "self_attn.q_proj.weight"].T
        k = h @ w[p + "self_attn.k_proj.weight"].T
        v = h @ w[p + "self_attn.v_proj.weight"].T
        if not qwen3:
            q = q + w[p + "self_attn.q_proj.bias"]
            k = k + w[p + "self_attn.k_proj.bias"]
            v = v + w[p + "self_attn.v_proj.bias"]
        q = q.view(Bn, Tn, Hq, hd)
        k = k.view(Bn, Tn, Hkv, hd)
        v = v.view(Bn, Tn, Hkv, hd)
        if qwen3:  # per-head RMSNorm over head_dim, before RoPE
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, H, T, hd]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(Hq // Hkv, dim=1)  # query head h reads kv head h // (Hq / Hkv)
        v = v.repeat_interleave(Hq // Hkv, dim=1)
        s = (q @ k.transpose(-1, -2)) * hd ** -0.5
        s = s.masked_fill(~causal, float("-inf"))
        a = torch.softmax(s, dim=-1) @ v  # [B, H, T, hd]
        a = a.transpose(1, 2).reshape(Bn, Tn, Hq * hd)
        acts[f"act.layer{l}.attn_out"] = a
        x = x + a @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        g = h @ w[p + "mlp.gate_proj.weight"].T
        u = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(g) * u) @ w[p + "mlp.down_proj.weight"].T
        acts[f"act.layer{l}"] = x
    x = rms_norm(x, w["model.norm.weight"], eps)
    acts["act.final_norm"] = x
    lm_head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ lm_head.T


def make_reference(cfg, w32, gen):
    V = cfg["vocab_size"]
    tokens = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int64)
    w = {k: v.double().requires_grad_(True) for k, v in w32.items()}
    acts = {}
    logits = forward(cfg, w, tokens, acts)
    logp_all = torch.log_softmax(logits[:, :-1], dim=-1)
    logprobs = logp_all.gather(-1, tokens[:, 1:, None])[..., 0]  # [B, T-1]
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    weights = torch.randn(B, T - 1, generator=gen, dtype=torch.float64)
    weights[0, -3:] = 0.0  # padding at the end of the first sequence
    weights[2, :2] = 0.0   # and masked prompt tokens at the start of the last one
    loss = (weights * logprobs).sum()
    loss.backward()
    ref = {"tokens": tokens.to(torch.int32),
           "logits": logits.detach().float(),
           "logprobs": logprobs.detach().float(),
           "entropy": entropy.detach().float(),
           "weights": weights.float(),
           "loss": loss.detach().reshape(1).float()}
    for k, v in acts.items():
        ref[k] = v.detach().float()
    for name, _, _ in param_shapes(cfg):
        ref["grad." + name] = w[name].grad.float()
    return ref


def write_model(out_dir, arch, seed, **overrides):
    os.makedirs(out_dir, exist_ok=True)
    cfg = dict(make_config(arch), **overrides)
    gen = torch.Generator().manual_seed(seed)
    w32 = random_weights(cfg, gen)
    ref = make_reference(cfg, w32, gen)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    save_safetensors(os.path.join(out_dir, "model.safetensors"), w32)
    save_safetensors(os.path.join(out_dir, "reference.safetensors"), ref,
                     {"generator": "tools/make_qwen_fixtures.py", "batch": str(B), "seq_len": str(T)})
    print(f"{out_dir}: {sum(v.numel() for v in w32.values())} parameters, loss {ref['loss'].item():.6f}")
    return cfg, w32


def check_saved(model_dir, fixture_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    w = {k: v.double() for k, v in load_safetensors(os.path.join(model_dir, "model.safetensors")).items()}
    expected = {name for name, _, _ in param_shapes(cfg)}
    if set(w) != expected:
        raise SystemExit(f"tensor names differ: missing {sorted(expected - set(w))}, extra {sorted(set(w) - expected)}")
    for name, shape, _ in param_shapes(cfg):
        if tuple(w[name].shape) != shape:
            raise SystemExit(f"{name}: shape {tuple(w[name].shape)}, expected {shape}")
    ref = load_safetensors(os.path.join(fixture_dir, "reference.safetensors"))
    with torch.no_grad():
        logits = forward(cfg, w, ref["tokens"].long(), {})
    diff = (logits - ref["logits"].double()).abs().max().item()
    print(f"{model_dir}: {len(w)} tensors, torch_dtype {cfg.get('torch_dtype')}, "
          f"max |logits - reference| = {diff:.3g}")
    return diff


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures")
    ap.add_argument("--check", metavar="DIR", help="check a saved model directory against a fixture")
    ap.add_argument("--reference", metavar="FIXTURE_DIR", default="tests/fixtures/qwen3-tiny")
    args = ap.parse_args()
    if args.check:
        check_saved(args.check, args.reference)
        return
    cfg3, w3 = write_model(os.path.join(args.out, "qwen3-tiny"), "qwen3", 1234)
    write_model(os.path.join(args.out, "qwen2-tiny"), "qwen2", 5678)
    # Shapes the two above do not cover, as in real Qwen3 checkpoints: Hq * head_dim != hidden_size
    # (Qwen3-0.6B: 16 x 128 vs 1024), 4 query heads per kv head (Qwen3-4B: 32 / 8), untied lm_head
    # (Qwen3-8B), a large rope_theta (the 2507 models: 5e6).
    write_model(os.path.join(args.out, "qwen3-tiny-wide"), "qwen3", 4321, vocab_size=64, hidden_size=32,
                intermediate_size=48, num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                tie_word_embeddings=False, rope_theta=5000000.0)
    # The same Qwen3 weights stored as bf16 (torch rounds to nearest even), for the loader tests.
    bf_dir = os.path.join(args.out, "qwen3-tiny-bf16")
    os.makedirs(bf_dir, exist_ok=True)
    with open(os.path.join(bf_dir, "config.json"), "w") as f:
        json.dump(dict(cfg3, torch_dtype="bfloat16"), f, indent=2, sort_keys=True)
        f.write("\n")
    save_safetensors(os.path.join(bf_dir, "model.safetensors"), {k: v.to(torch.bfloat16) for k, v in w3.items()})
    print(f"{bf_dir}: bf16 copy")


if __name__ == "__main__":
    main()
