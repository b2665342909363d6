"""Pre-trains a small Llama-architecture decoder on the generated text (next-token prediction), fine-tunes it on the
generated dialogues rendered with the chat template (loss on assistant replies only), and exports a Hugging Face
checkpoint (config.json + model.safetensors, F32, tied embeddings) that tools/ModelBuilder converts into the served
model folder. Writes the loss curves (loss.png, losses.json) and greedy samples.

Vocabulary: the Llama 2 tokenizer's 32000 ids, of which the generated corpus uses a few hundred. Training keeps
embedding rows only for the used ids; the rows of all other ids are exported as zeros, so their logits are exactly 0.
The loss therefore includes one extra logit fixed at log(32000 - used): the log of the summed probability of those
zero-logit ids. That makes the training loss exactly the full-vocabulary cross-entropy of the exported model, at the
cost of a few-hundred-wide output layer instead of a 32000-wide one."""
import argparse
import json
import math
import os
import random
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB = 32000
BOS, EOS = 1, 2


class Config:
    hidden = 128
    layers = 4
    heads = 4
    kv_heads = 4
    head_dim = 32
    intermediate = 384
    rope_theta = 10000.0
    eps = 1e-5


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):  # Hugging Face Llama's convention: the two halves of each head, not interleaved pairs
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.input_layernorm = RMSNorm(c.hidden, c.eps)
        self.post_attention_layernorm = RMSNorm(c.hidden, c.eps)
        self.q_proj = nn.Linear(c.hidden, c.heads * c.head_dim, bias=False)
        self.k_proj = nn.Linear(c.hidden, c.kv_heads * c.head_dim, bias=False)
        self.v_proj = nn.Linear(c.hidden, c.kv_heads * c.head_dim, bias=False)
        self.o_proj = nn.Linear(c.heads * c.head_dim, c.hidden, bias=False)
        self.gate_proj = nn.Linear(c.hidden, c.intermediate, bias=False)
        self.up_proj = nn.Linear(c.hidden, c.intermediate, bias=False)
        self.down_proj = nn.Linear(c.intermediate, c.hidden, bias=False)

    def forward(self, x, cos, sin, mask):
        c = self.c
        b, t, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(b, t, c.heads, c.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(b, t, c.kv_heads, c.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(b, t, c.kv_heads, c.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if c.kv_heads != c.heads:
            k = k.repeat_interleave(c.heads // c.kv_heads, dim=1)
            v = v.repeat_interleave(c.heads // c.kv_heads, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(c.head_dim)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        x = x + self.o_proj((att @ v).transpose(1, 2).reshape(b, t, -1))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Model(nn.Module):
    def __init__(self, c, used_ids):
        super().__init__()
        self.c = c
        self.register_buffer("used_ids", torch.tensor(used_ids, dtype=torch.long))
        self.embed = nn.Embedding(len(used_ids), c.hidden)  # row i is token used_ids[i]; tied with the output layer
        nn.init.normal_(self.embed.weight, std=0.02)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.norm = RMSNorm(c.hidden, c.eps)
        self.rest_logit = math.log(VOCAB - len(used_ids))

    def rope(self, t):
        inv = 1.0 / (self.c.rope_theta ** (torch.arange(0, self.c.head_dim, 2).float() / self.c.head_dim))
        f = torch.outer(torch.arange(t).float(), inv)
        e = torch.cat((f, f), dim=-1)
        return e.cos(), e.sin()

    def forward(self, x):  # x: compact ids [b, t] -> logits over [used ids..., rest]
        t = x.shape[1]
        cos, sin = self.rope(t)
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
        h = self.embed(x)
        for blk in self.blocks:
            h = blk(h, cos, sin, mask)
        logits = self.norm(h) @ self.embed.weight.t()
        rest = torch.full((*logits.shape[:-1], 1), self.rest_logit)
        return torch.cat((logits, rest), dim=-1)


def pack(seqs, masks, length, rng):
    """Concatenates shuffled sequences into rows of length+1 tokens (inputs and shifted targets)."""
    order = list(range(len(seqs)))
    rng.shuffle(order)
    ids, ms = [], []
    for i in order:
        ids += seqs[i]
        ms += masks[i] if masks is not None else [1] * len(seqs[i])
    n = (len(ids) - 1) // length
    x = torch.tensor(ids[: n * length + 1])
    m = torch.tensor(ms[: n * length + 1])
    idx = torch.arange(n)[:, None] * length + torch.arange(length + 1)[None, :]
    return x[idx], m[idx]


def loss_of(model, rows, masks):
    logits = model(rows[:, :-1])
    target = rows[:, 1:].reshape(-1)
    m = masks[:, 1:].reshape(-1).float()
    l = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target, reduction="none")
    return (l * m).sum() / m.sum().clamp(min=1)


@torch.no_grad()
def evaluate(model, rows, masks, batch):
    model.eval()
    tot, cnt = 0.0, 0.0
    for i in range(0, len(rows), batch):
        r, m = rows[i:i + batch], masks[i:i + batch]
        n = m[:, 1:].sum().item()
        tot += loss_of(model, r, m).item() * n
        cnt += n
    model.train()
    return tot / max(cnt, 1)


def run_phase(name, model, opt, train, val, steps, batch, lr, log, t0, eval_every):
    rows, masks = train
    for step in range(steps):
        cur = lr * min(1.0, (step + 1) / 30) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for g in opt.param_groups:
            g["lr"] = cur
        pick = torch.randint(0, len(rows), (batch,))
        loss = loss_of(model, rows[pick], masks[pick])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        entry = {"phase": name, "step": len(log["train"]), "loss": loss.item(), "time": time.time() - t0}
        log["train"].append(entry)
        if step % eval_every == 0 or step == steps - 1:
            v = evaluate(model, *val, 64)
            log["val"].append({"phase": name, "step": entry["step"], "loss": v})
            print(f"[{name}] step {step + 1}/{steps} loss {loss.item():.3f} val {v:.3f} lr {cur:.2e} "
                  f"{time.time() - t0:.0f}s", flush=True)


def to_compact(seqs, remap):
    return [[remap[t] for t in s] for s in seqs]


@torch.no_grad()
def greedy(model, remap, ids, max_new=60):
    inv = model.used_ids.tolist()
    x = [remap[t] for t in ids]
    out = []
    for _ in range(max_new):
        logits = model(torch.tensor([x]))[0, -1, :-1]
        nxt = int(logits.argmax())
        if inv[nxt] == EOS:
            break
        out.append(inv[nxt])
        x.append(nxt)
    return out


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().float().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def export(model, out, context):
    c = model.c
    os.makedirs(out, exist_ok=True)
    embed = torch.zeros(VOCAB, c.hidden)
    embed[model.used_ids] = model.embed.weight.detach()
    t = {"model.embed_tokens.weight": embed, "model.norm.weight": model.norm.weight}
    for i, b in enumerate(model.blocks):
        p = f"model.layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            t[p + "self_attn." + n + ".weight"] = getattr(b, n).weight
        for n in ("gate_proj", "up_proj", "down_proj"):
            t[p + "mlp." + n + ".weight"] = getattr(b, n).weight
        t[p + "input_layernorm.weight"] = b.input_layernorm.weight
        t[p + "post_attention_layernorm.weight"] = b.post_attention_layernorm.weight
    write_safetensors(os.path.join(out, "model.safetensors"), t)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": VOCAB, "hidden_size": c.hidden,
        "intermediate_size": c.intermediate, "num_hidden_layers": c.layers, "num_attention_heads": c.heads,
        "num_key_value_heads": c.kv_heads, "head_dim": c.head_dim, "hidden_act": "silu",
        "max_position_embeddings": context, "rms_norm_eps": c.eps, "rope_theta": c.rope_theta,
        "tie_word_embeddings": True, "attention_bias": False, "mlp_bias": False, "bos_token_id": BOS,
        "eos_token_id": EOS, "torch_dtype": "float32",
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def plot(log, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for phase, colour in (("pretrain", "tab:blue"), ("sft", "tab:orange")):
        tr = [e for e in log["train"] if e["phase"] == phase]
        va = [e for e in log["val"] if e["phase"] == phase]
        if not tr:
            continue
        k = 10  # moving average of the per-batch losses
        sm = [sum(e["loss"] for e in tr[max(0, i - k + 1):i + 1]) / len(tr[max(0, i - k + 1):i + 1]) for i in range(len(tr))]
        ax.plot([e["step"] for e in tr], sm, color=colour, label=f"{phase} train (10-step mean)")
        ax.plot([e["step"] for e in va], [e["loss"] for e in va], "o--", color=colour, alpha=0.7, label=f"{phase} validation")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats/token, full 32000-token vocabulary)")
    ax.set_yscale("log")
    ax.set_title("Pre-training on generated text, then fine-tuning on dialogues (assistant tokens)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pretrain-steps", type=int, default=350)
    ap.add_argument("--sft-steps", type=int, default=250)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--context", type=int, default=512, help="max_position_embeddings of the exported model")
    ap.add_argument("--val-rows", type=int, default=64)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(HERE, "checkpoint"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    with open(os.path.join(HERE, "data", "tokens.json")) as f:
        data = json.load(f)
    pre, dia = data["pretrain"], data["dialogues"]
    used = sorted({t for s in pre for t in s} | {t for d in dia for t in d["ids"]} | {BOS, EOS})
    remap = {t: i for i, t in enumerate(used)}
    pre_c = to_compact(pre, remap)
    dia_ids = to_compact([d["ids"] for d in dia], remap)
    dia_mask = [d["mask"] for d in dia]
    nv_pre, nv_dia = len(pre_c) // 20, len(dia_ids) // 20  # 5% held out for validation
    pre_train = pack(pre_c[nv_pre:], None, args.length, rng)
    pre_val = pack(pre_c[:nv_pre], None, args.length, rng)
    sft_train = pack(dia_ids[nv_dia:], dia_mask[nv_dia:], args.length, rng)
    sft_val = pack(dia_ids[:nv_dia], dia_mask[:nv_dia], args.length, rng)
    # A fixed validation subset keeps the evaluations cheap next to the training steps.
    pre_val = (pre_val[0][:args.val_rows], pre_val[1][:args.val_rows])
    sft_val = (sft_val[0][:args.val_rows], sft_val[1][:args.val_rows])
    print(f"used token ids {len(used)}; pretrain rows {len(pre_train[0])} (+{len(pre_val[0])} val); "
          f"sft rows {len(sft_train[0])} (+{len(sft_val[0])} val) of {args.length} tokens")

    model = Model(Config(), used)
    layer_params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("embed"))
    print(f"parameters: {layer_params + VOCAB * Config.hidden:,} as exported (embedding {VOCAB}x{Config.hidden}, tied); "
          f"{sum(p.numel() for p in model.parameters()):,} trained")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.05)
    log = {"train": [], "val": []}
    t0 = time.time()
    run_phase("pretrain", model, opt, pre_train, pre_val, args.pretrain_steps, args.batch, args.lr, log, t0, args.eval_every)
    run_phase("sft", model, opt, sft_train, sft_val, args.sft_steps, args.batch, args.lr / 3, log, t0, args.eval_every)
    elapsed = time.time() - t0
    print(f"training took {elapsed:.0f}s")

    export(model, args.out, args.context)
    log["summary"] = {"seconds": elapsed, "threads": args.threads, "args": vars(args),
                      "final_val": {p: [e for e in log["val"] if e["phase"] == p][-1]["loss"] for p in ("pretrain", "sft")}}
    with open(os.path.join(HERE, "losses.json"), "w") as f:
        json.dump(log, f)
    plot(log, os.path.join(HERE, "loss.png"))
    torch.save(model.state_dict(), os.path.join(args.out, "train_state.pt"))


if __name__ == "__main__":
    main()
