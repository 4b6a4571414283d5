"""`scaling flops CONFIG`: parameter and FLOP table for a model (or a run config's model)."""
from __future__ import annotations

import json


def register(subparsers):
    p = subparsers.add_parser(
        "flops", help="parameter counts and FLOPs per token of a model config",
        description="Print total / embedding / non-embedding / active parameters and training FLOPs per token "
        "under the 6N and full conventions. CONFIG is a model YAML, a ladder name (dense-1m), a run YAML or a "
        "bundled run recipe's name (tiny-math).")
    p.add_argument("config", metavar="CONFIG")
    p.add_argument("--seq-len", type=int, default=None, help="context length for attention FLOPs (default: model.max_seq_len, or train.seq_len of a run config)")
    p.add_argument("--tokens", type=float, default=None, help="also print total training FLOPs for this many tokens")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=run)


def run(args) -> int:
    from scaling.bundled import locate
    from scaling.config.base import read_yaml
    from scaling.config.run import load_model_config
    from scaling.errors import UserError
    from scaling.model.accounting import count_model

    config = _config_file(args.config, locate)
    cfg = load_model_config(config, args.set)
    seq_len = args.seq_len
    if seq_len is None and config.endswith((".yaml", ".yml")):
        seq_len = (read_yaml(config).get("train") or {}).get("seq_len")
    seq_len = seq_len or cfg.max_seq_len
    if seq_len < 1:
        raise UserError(f"--seq-len: must be positive, got {seq_len}")
    c = count_model(cfg, seq_len)
    from scaling.model.attention_impl import available_attention, current_platform, describe_attention

    platform = current_platform()  # the kernel depends on where it runs: say which platform this is
    attention = describe_attention(cfg, platform, seq_len)
    rows = [
        ("parameters, total", c.n_params, "count as built (vocab padded to 128)"),
        ("  embedding", c.n_embedding, "token (+position) embedding and untied head"),
        ("  non-embedding", c.n_nonembedding, "Kaplan's N"),
        ("  active", c.n_active, "per token (MoE: top-k routed experts)"),
        ("  active non-embedding", c.n_active_nonembedding, "N in the 6N convention"),
        ("train FLOPs/token, 6N", c.train_flops_per_token_6n, "6 × active non-embedding"),
        ("train FLOPs/token, full", c.train_flops_per_token_full, "3 × forward matmuls incl. head and causal attention/2"),
        ("forward FLOPs/token, full", c.forward_flops_per_token, f"at sequence length {seq_len}"),
    ]
    if args.tokens:
        rows += [(f"train FLOPs for {args.tokens:.3g} tokens, 6N", c.train_flops_per_token_6n * args.tokens, ""),
                 (f"train FLOPs for {args.tokens:.3g} tokens, full", c.train_flops_per_token_full * args.tokens, "")]
    if args.json:
        out = {"model": cfg.name, "seq_len": seq_len, **c.as_dict(),
               "attention": {"set": cfg.attention, "platform": platform, "note": attention,
                             "chosen": available_attention(cfg, platform, seq_len)}}
        if cfg.moe:
            out["moe"] = {"n_experts": cfg.moe.n_experts, "top_k": cfg.moe.top_k, "every": cfg.moe.every}
        print(json.dumps(out))
        return 0
    from rich.console import Console
    from rich.table import Table

    title = f"{cfg.name}: D={cfg.D} L={cfg.L} H={cfg.H} KV={cfg.n_kv_heads} F={cfg.F} V={cfg.V}"
    if cfg.moe:
        m = cfg.moe
        title += f" | MoE {m.n_experts} experts top-{m.top_k} d_expert={m.d_expert} every {m.every}"
        title += f" shared={m.n_shared_experts} ({m.dispatch})"
    table = Table(title=title)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_column("convention / note")
    for name, value, note in rows:
        shown = f"{value:,}" if isinstance(value, int) else f"{value:.4g}"
        if isinstance(value, int) and value >= 1e5:
            shown += f" ({value / 1e6:.2f}M)"
        table.add_row(name, shown, note)
    Console(width=120).print(table)
    print(f"attention kernel (training, on this machine): {attention}")
    return 0


def _config_file(arg: str, locate) -> str:
    """What CONFIG names: a YAML (bundled paths work from any directory), a model of the ladder, else a bundled
    run recipe as `scaling train` takes it (`tiny-math`); an unknown name is left for the ladder's error."""
    if arg.endswith((".yaml", ".yml")):
        return str(locate(arg, "model"))
    if locate(arg, "model").is_file():
        return arg
    recipe = locate(arg, "train")
    return str(recipe) if recipe.is_file() else arg
