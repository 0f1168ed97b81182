"""Export a timm model's state_dict to a float32 safetensors file for glimpse.

    .venv/bin/python tools/export_timm.py NAME [--pretrained] [--arg KEY=VALUE ...] [--force] OUT.safetensors

Examples:

    .venv/bin/python tools/export_timm.py skresnet18 --pretrained skresnet18.safetensors
    .venv/bin/python tools/export_timm.py resnet50d --arg attn_layer=cbam --arg num_classes=10 r50d_cbam.safetensors

Runs `timm.create_model(NAME, pretrained=..., **kwargs)`, puts the model in eval mode
and writes its `state_dict()` (floating tensors cast to float32; BatchNorm's int64
`num_batches_tracked` kept) with metadata:

- `timm.model`: NAME as given (a pretrained tag such as `resnet50d.ra2_in1k` included);
- `timm.kwargs`: JSON of the kwargs passed to create_model (after the attn_layer rule below);
- `timm.pretrained_cfg`: JSON of the JSON-able fields among input_size, crop_pct,
  interpolation, mean, std, num_classes, crop_mode of `model.pretrained_cfg`. Its
  num_classes is the pretrained classifier's (1000 for ImageNet-1k) even when
  `--arg num_classes=...` changed the model, hence also
- `timm.num_classes`: the model's own class count (`model.num_classes`).

`--arg KEY=VALUE`: VALUE is parsed with `ast.literal_eval` (numbers, tuples, lists,
dicts, True/False/None), falling back to the plain string (`attn_layer=cbam`). For the
models of timm.models.resnet, `attn_layer=X` goes into `block_args=dict(attn_layer=X)`
(merged with any `block_args` given). The skresnet* functions set their own
`block_args` (sk_kwargs) and timm's shallow kwarg merge would replace them, so
`attn_layer` / `block_args` are refused for them.

`--pretrained` downloads from the Hugging Face hub (not reachable from the
development machines; run it where it is). The output is never overwritten unless
`--force`; the file is written to OUT.tmp next to it and renamed into place.
"""

import argparse
import ast
import difflib
import json
import os
import sys
from pathlib import Path

import timm
import torch

sys.dont_write_bytecode = True  # keep tools/ free of __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import canonical_safetensors  # noqa: E402

CFG_FIELDS = ("input_size", "crop_pct", "interpolation", "mean", "std", "num_classes", "crop_mode")


def parse_value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("name", help="timm model name, optionally with a pretrained tag (resnet50d.ra2_in1k)")
    p.add_argument("out", help="output .safetensors path")
    p.add_argument("--pretrained", action="store_true", help="load the pretrained weights (hub download)")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE", help="create_model kwarg (repeatable)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    return p.parse_args(argv)


def build_kwargs(base_name, args):
    kwargs = {}
    for item in args:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            sys.exit(f"error: --arg expects KEY=VALUE, got {item!r}")
        kwargs[key] = parse_value(value)
    module = timm.models.model_entrypoint(base_name).__module__
    if module == "timm.models.sknet" and ("attn_layer" in kwargs or "block_args" in kwargs):
        sys.exit(f"error: {base_name} sets its own block_args (sk_kwargs); passing attn_layer / block_args "
                 "would replace them (timm merges the model kwargs shallowly)")
    if module == "timm.models.resnet" and "attn_layer" in kwargs:
        block_args = dict(kwargs.get("block_args") or {})
        block_args["attn_layer"] = kwargs.pop("attn_layer")
        kwargs["block_args"] = block_args
    return kwargs


def jsonable(value):
    if isinstance(value, tuple):
        value = list(value)
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return None
    return value


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    if out.exists() and not args.force:
        sys.exit(f"error: {out} exists (use --force to overwrite)")
    base_name = args.name.split(".", 1)[0]
    if not timm.is_model(base_name):
        close = difflib.get_close_matches(base_name, timm.list_models(), n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        sys.exit(f"error: timm {timm.__version__} has no model named {base_name!r}{hint}")
    kwargs = build_kwargs(base_name, args.arg)
    try:
        model = timm.create_model(args.name, pretrained=args.pretrained, **kwargs)
    except Exception as e:  # unknown tag, bad kwarg, no network for the hub...
        sys.exit(f"error: timm.create_model({args.name!r}, pretrained={args.pretrained}, **{kwargs!r}) "
                 f"failed: {type(e).__name__}: {e}")
    model.eval()

    tensors = {k: (v.float() if v.is_floating_point() else v).contiguous()
               for k, v in model.state_dict().items()}
    cfg = getattr(model, "pretrained_cfg", None) or {}
    cfg_out = {}
    for k in CFG_FIELDS:
        v = jsonable(cfg.get(k))
        if v is not None:
            cfg_out[k] = v
    meta = {
        "timm.model": args.name,
        "timm.kwargs": json.dumps(kwargs, sort_keys=True),
        "timm.pretrained_cfg": json.dumps(cfg_out, sort_keys=True),
        "timm.num_classes": str(model.num_classes),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(canonical_safetensors(tensors, meta))
    if out.exists() and not args.force:  # appeared meanwhile
        tmp.unlink()
        sys.exit(f"error: {out} exists (use --force to overwrite)")
    os.replace(tmp, out)
    n = sum(v.numel() for v in tensors.values() if v.is_floating_point())
    print(f"{out}: {len(tensors)} tensors, {n} float32 values, {out.stat().st_size} bytes; "
          f"timm {timm.__version__} {args.name} kwargs={meta['timm.kwargs']} pretrained_cfg={meta['timm.pretrained_cfg']}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
