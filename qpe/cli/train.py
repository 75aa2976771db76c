"""``qpe train CONFIG.yaml``: train a U-Net, DDPM or flow-matching model and write its checkpoint."""

from __future__ import annotations

import argparse

from qpe.cli import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train a model from a YAML config",
        description="Train a model (unet, ddpm or flow) from a YAML config and write its checkpoint folder "
        "(card.yaml + weights.safetensors) at every checkpoint, with the resumable run state beside it "
        "(<out>.state/). Data-parallel: torchrun --nproc_per_node N -m qpe train CONFIG.yaml.",
    )
    p.add_argument("config", help="training config (YAML), e.g. configs/train/demo_unet.yaml")
    p.add_argument("--data", help="dataset path or catalog name (default: the config's 'data')")
    p.add_argument("--out", help="checkpoint folder to write (default runs/<name>)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run at --out")
    p.add_argument("--steps", type=positive_int, help="override optim.steps (e.g. to extend a run with --resume)")
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from qpe.models import load
    from qpe.training import TrainConfig, train
    from qpe.training.distributed import Processes

    config = TrainConfig.from_yaml(args.config)
    if args.steps is not None:
        config = config.replace(optim=dataclasses.replace(config.optim, steps=args.steps))
    out = train(config, data=args.data, out=args.out, resume=args.resume, device=args.device)
    if Processes.from_env().is_main:
        card = load(out).card
        scores = ", ".join(f"{k} {v:.4g}" for k, v in card.validation.items() if k != "step")
        print(f"wrote {out}: {card.family} {card.name!r}, {card.training.steps} steps, "
              f"{card.weights.parameters:,} parameters; validation: {scores}")
    return 0
