"""PyTorch (and NumPy) CPU reference for circuitscope's benchmark: the same shapes, timed the same way.

Run by bench/main.ts when a Python with torch is available (Debian's python3-torch); never needed by
tests. Prints one JSON document on stdout. Threads are left at the library defaults on purpose
(Debian's torch hands matmuls to OpenBLAS's own threads; forcing a count made it slower).
"""
import json
import math
import sys
import time


def best_of(fn, min_time=0.5, min_reps=3, max_reps=200):
    fn()  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < min_time and len(times) < max_reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]  # median


def gpt2_model(torch, d_model=768, n_layers=12, n_heads=12, d_mlp=3072, d_vocab=50257, n_ctx=1024):
    nn = torch.nn
    F = torch.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(d_model)
            self.qkv = nn.Linear(d_model, 3 * d_model)
            self.proj = nn.Linear(d_model, d_model)
            self.ln2 = nn.LayerNorm(d_model)
            self.fc = nn.Linear(d_model, d_mlp)
            self.out = nn.Linear(d_mlp, d_model)

        def forward(self, x, cache=None):
            B, T, C = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
            q = q.view(B, T, n_heads, C // n_heads).transpose(1, 2)
            k = k.view(B, T, n_heads, C // n_heads).transpose(1, 2)
            v = v.view(B, T, n_heads, C // n_heads).transpose(1, 2)
            if cache is not None:  # KV cache for generation: [past keys | new keys]
                if "k" in cache:
                    k = torch.cat([cache["k"], k], dim=2)
                    v = torch.cat([cache["v"], v], dim=2)
                cache["k"], cache["v"] = k, v
            Tk = k.shape[2]
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // n_heads))
            mask = torch.ones(T, Tk, dtype=torch.bool).tril(diagonal=Tk - T)
            att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
            y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
            x = x + self.proj(y)
            return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(d_vocab, d_model)
            self.wpe = nn.Embedding(n_ctx, d_model)
            self.blocks = nn.ModuleList([Block() for _ in range(n_layers)])
            self.ln_f = nn.LayerNorm(d_model)
            self.lm_head = nn.Linear(d_model, d_vocab, bias=False)

        def forward(self, idx, caches=None, past=0):
            T = idx.shape[1]
            x = self.wte(idx) + self.wpe(torch.arange(past, past + T))
            for i, b in enumerate(self.blocks):
                x = b(x, None if caches is None else caches[i])
            return self.lm_head(self.ln_f(x))

        def generate(self, idx, new_tokens):
            caches = [dict() for _ in self.blocks]
            logits = self(idx, caches)
            past = idx.shape[1]
            for _ in range(new_tokens):
                nxt = logits[:, -1].argmax(-1, keepdim=True)
                logits = self(nxt, caches, past)
                past += 1
            return logits

    return GPT()


def grokking_step_seconds(torch, g):
    """Nanda et al.'s 1-layer modular-addition transformer written directly in torch: embedding,
    learned positions, causal multi-head attention without biases, ReLU MLP (with biases), unembed
    without bias, no LayerNorm; one full-batch AdamW step on the training pairs, loss at "=" over
    the p residues. Median seconds per step after warm-up."""
    nn = torch.nn
    F = torch.nn.functional
    p, D, H, M = g["p"], g["d_model"], g["n_heads"], g["d_mlp"]
    V, C, dh = p + 1, 3, D // H

    class Grok(nn.Module):
        def __init__(self):
            super().__init__()
            self.W_E = nn.Parameter(torch.randn(V, D) / math.sqrt(D))
            self.W_pos = nn.Parameter(torch.randn(C, D) / math.sqrt(D))
            self.W_Q = nn.Parameter(torch.randn(D, D) / math.sqrt(D))
            self.W_K = nn.Parameter(torch.randn(D, D) / math.sqrt(D))
            self.W_V = nn.Parameter(torch.randn(D, D) / math.sqrt(D))
            self.W_O = nn.Parameter(torch.randn(D, D) / math.sqrt(D))
            self.W_in = nn.Parameter(torch.randn(D, M) / math.sqrt(D))
            self.b_in = nn.Parameter(torch.zeros(M))
            self.W_out = nn.Parameter(torch.randn(M, D) / math.sqrt(D))
            self.b_out = nn.Parameter(torch.zeros(D))
            self.W_U = nn.Parameter(torch.randn(D, V) / math.sqrt(V))
            self.register_buffer("mask", torch.ones(C, C, dtype=torch.bool).tril())

        def forward(self, idx):
            B, T = idx.shape
            x = self.W_E[idx] + self.W_pos[:T]
            q = (x @ self.W_Q).view(B, T, H, dh).transpose(1, 2)
            k = (x @ self.W_K).view(B, T, H, dh).transpose(1, 2)
            v = (x @ self.W_V).view(B, T, H, dh).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) / math.sqrt(dh)
            att = att.masked_fill(~self.mask[:T, :T], float("-inf")).softmax(dim=-1)
            z = (att @ v).transpose(1, 2).reshape(B, T, D)
            x = x + z @ self.W_O
            x = x + F.relu(x @ self.W_in + self.b_in) @ self.W_out + self.b_out
            return x[:, -1] @ self.W_U  # [B, V]: logits at "="

    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(p * p, generator=gen)[: round(g["frac_train"] * p * p)]
    a, b = perm // p, perm % p
    idx = torch.stack([a, b, torch.full_like(a, p)], dim=1)
    labels = (a + b) % p
    model = Grok()
    opt = torch.optim.AdamW(model.parameters(), lr=g["lr"], weight_decay=g["weight_decay"], betas=tuple(g["betas"]))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(idx)[:, :p], labels)
        loss.backward()
        opt.step()

    step()  # extra warm-up (best_of adds one more)
    steps = g.get("steps", 10)
    return best_of(step, min_time=1.0, min_reps=steps, max_reps=max(steps, 50)), int(idx.shape[0])


def main():
    spec = json.loads(sys.argv[1])
    out = {"matmul": [], "add16x768_us": None, "gpt2": {}, "numpy_matmul": []}
    try:
        import torch
    except ImportError as e:
        print(json.dumps({"error": f"torch unavailable: {e}"}))
        return
    out["torch_version"] = torch.__version__
    # Debian's torch calls whatever libblas.so.3 the alternatives system points at: the reference
    # BLAS (~5 GFLOP/s) unless libopenblas0-pthread is installed. Record which one ran.
    import glob
    import os
    libs = glob.glob("/usr/lib/*/libblas.so.3")
    out["blas"] = os.path.realpath(libs[0]) if libs else "unknown"
    out["torch_threads"] = torch.get_num_threads()
    torch.manual_seed(0)
    with torch.no_grad():
        for T, K, N in spec["matmul"]:
            a = torch.randn(T, K)
            b = torch.randn(K, N)
            t = best_of(lambda: a @ b)
            out["matmul"].append({"T": T, "K": K, "N": N, "seconds": t, "gflops": 2 * T * K * N / t / 1e9})
        x = torch.randn(16, 768)
        y = torch.randn(16, 768)
        n = 20000
        t0 = time.perf_counter()
        for _ in range(n):
            x + y
        out["add16x768_us"] = (time.perf_counter() - t0) / n * 1e6
    try:
        import numpy as np
        for T, K, N in spec["matmul"]:
            a = np.random.randn(T, K).astype(np.float32)
            b = np.random.randn(K, N).astype(np.float32)
            t = best_of(lambda: a @ b)
            out["numpy_matmul"].append({"T": T, "K": K, "N": N, "seconds": t, "gflops": 2 * T * K * N / t / 1e9})
        out["numpy_version"] = np.__version__
    except ImportError:
        pass
    if spec.get("gpt2"):
        model = gpt2_model(torch)
        for T in spec["gpt2"]["forward"]:
            idx = torch.randint(0, 50257, (1, T))
            with torch.no_grad():
                out["gpt2"][f"forward_T{T}"] = best_of(lambda: model(idx), min_time=1.0, min_reps=3, max_reps=10)
        for T in spec["gpt2"]["backward"]:
            idx = torch.randint(0, 50257, (1, T))
            F = torch.nn.functional

            def step():
                model.zero_grad(set_to_none=True)
                logits = model(idx)
                loss = F.cross_entropy(logits[0, :-1], idx[0, 1:])
                loss.backward()

            out["gpt2"][f"forward_backward_T{T}"] = best_of(step, min_time=1.0, min_reps=3, max_reps=10)
        if spec["gpt2"].get("generate"):
            P, N = spec["gpt2"]["generate"]
            idx = torch.randint(0, 50257, (1, P))
            with torch.no_grad():
                out["gpt2"]["generate_ms_per_token"] = best_of(lambda: model.generate(idx, N), min_time=1.0, min_reps=2, max_reps=5) / N * 1000
    if spec.get("grokking"):
        secs, batch = grokking_step_seconds(torch, spec["grokking"])
        out["grokking"] = {"seconds_per_step": secs, "batch": batch, "p": spec["grokking"]["p"]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
