"""A Qwen3 decoder in plain PyTorch (no transformers), written the way transformers' modeling_qwen3
runs it in eager mode: nn.Linear modules, per-head q/k RMSNorm, rotate-half RoPE, GQA by
repeat_kv, fp32 softmax, tied lm_head, and a list-of-tensors KV cache for generation. It is the
peer the benchmarks time pionrl against (tools/bench_model_torch.py, tools/bench_rl_step_torch.py);
it is not a correctness reference (tools/make_qwen_fixtures.py is).

    model = Qwen3(V, D, F, L, HQ, HKV, HD)
    logits = model(ids)                       # [B, T, V]
    logits = model(ids, keep=K)               # lm_head on the last K positions only
    caches = [[None, None] for _ in range(L)]  # generation: prefill, then one token at a time
    logits = model(prompt, 0, caches); logits = model(tok, start, caches)
"""
import torch
import torch.nn as nn
import torch.nn.functional as Fn


class RMSNorm(nn.Module):
    def __init__(self, n, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class Layer(nn.Module):
    def __init__(self, D, FF, HQ, HKV, HD):
        super().__init__()
        self.HQ, self.HKV, self.HD = HQ, HKV, HD
        self.q_proj = nn.Linear(D, HQ * HD, bias=False)
        self.k_proj = nn.Linear(D, HKV * HD, bias=False)
        self.v_proj = nn.Linear(D, HKV * HD, bias=False)
        self.o_proj = nn.Linear(HQ * HD, D, bias=False)
        self.q_norm, self.k_norm = RMSNorm(HD), RMSNorm(HD)
        self.gate_proj = nn.Linear(D, FF, bias=False)
        self.up_proj = nn.Linear(D, FF, bias=False)
        self.down_proj = nn.Linear(FF, D, bias=False)
        self.ln1, self.ln2 = RMSNorm(D), RMSNorm(D)

    def forward(self, x, cos, sin, cache=None):
        HQ, HKV, HD = self.HQ, self.HKV, self.HD
        b, t, _ = x.shape
        h = self.ln1(x)
        q = self.q_norm(self.q_proj(h).view(b, t, HQ, HD)).transpose(1, 2)
        k = self.k_norm(self.k_proj(h).view(b, t, HKV, HD)).transpose(1, 2)
        v = self.v_proj(h).view(b, t, HKV, HD).transpose(1, 2)
        cos, sin = cos.to(q.dtype), sin.to(q.dtype)  # a bf16 model keeps bf16 activations
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            if cache[0] is not None:
                k = torch.cat([cache[0], k], dim=2)
                v = torch.cat([cache[1], v], dim=2)
            cache[0], cache[1] = k, v
        rep = HQ // HKV
        kk = k.repeat_interleave(rep, dim=1)
        vv = v.repeat_interleave(rep, dim=1)
        s = (q @ kk.transpose(2, 3)) * HD ** -0.5
        tk = kk.shape[2]
        if t > 1:
            mask = torch.full((t, tk), float("-inf")).triu(tk - t + 1)
            s = s + mask
        a = torch.softmax(s.float(), dim=-1).to(vv.dtype) @ vv
        x = x + self.o_proj(a.transpose(1, 2).reshape(b, t, HQ * HD))
        h = self.ln2(x)
        return x + self.down_proj(Fn.silu(self.gate_proj(h)) * self.up_proj(h))


class Qwen3(nn.Module):
    def __init__(self, V, D, FF, L, HQ, HKV, HD, rope_theta=1e6):
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.layers = nn.ModuleList([Layer(D, FF, HQ, HKV, HD) for _ in range(L)])
        self.norm = RMSNorm(D)
        inv = 1.0 / (rope_theta ** (torch.arange(0, HD, 2).float() / HD))
        self.register_buffer("inv", inv)

    def rope(self, pos):
        f = pos[:, None].float() * self.inv[None]
        e = torch.cat([f, f], dim=-1)
        return e.cos()[None, None], e.sin()[None, None]

    def forward(self, ids, start=0, caches=None, keep=0):
        x = self.embed(ids)
        cos, sin = self.rope(torch.arange(start, start + ids.shape[1]))
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, None if caches is None else caches[i])
        if keep > 0:  # transformers' logits_to_keep: no vocabulary GEMM on the prompt
            x = x[:, -keep:]
        return self.norm(x) @ self.embed.weight.t()  # tied lm_head


def init_normal(model, std=0.02):
    """transformers' _init_weights for what this model has: normal(0, std) matrices, ones for norms."""
    for p in model.parameters():
        if p.dim() == 2:
            nn.init.normal_(p, std=std)
