"""`evaluate`: FID, KID, LPIPS, SSIM, PSNR and FPS under one recorded protocol."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"--size must be HxW like 256x192 (got {text!r})") from None
    return h, w


@app.command()
def evaluate(
    model: Optional[str] = typer.Option(None, "--model", help="registered model to evaluate (see `zoo list`)"),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="identity (the person unchanged) | paste (the article pasted "
                                           "onto the worn-garment mask), scored like a model at --size (eval/baselines.py)"),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="model dir (default: newest under checkpoints/<model>/)"),
    label_set: Optional[str] = typer.Option(None, "--label-set", help="only for models whose config.json records no label set (imports)"),
    data: Optional[Path] = typer.Option(None, "--data", help="dataset dir with triplets and arrays"),
    split: str = typer.Option("test", "--split"),
    protocol: str = typer.Option("paired", "--protocol", help="paired (own article, vs ground truth) | unpaired (another article)"),
    images: Optional[Path] = typer.Option(None, "--images", help="score a folder of generated images instead of a model"),
    reference: Optional[Path] = typer.Option(None, "--reference", help="reference folder for --images"),
    size: str = typer.Option("256x192", "--size", help="HxW images are resized to (folder mode and baselines; models use their own size)"),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    score_pixels: int = typer.Option(1 << 20, "--score-pixels", min=0, help="pixels LPIPS/SSIM/PSNR score at once (bounds their memory "
                                     "at high resolution; scores unchanged; 0 = the whole batch)"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    out: Path = typer.Option(Path("runs"), "--out", help="runs folder (a new run dir is created inside)"),
    feature_extractor: str = typer.Option("inception", "--feature-extractor", help="inception (standard FID weights) | untrained (seeded, NOT comparable)"),
    inception_weights: Optional[Path] = typer.Option(None, "--inception-weights", help="pt_inception-2015-12-05-6726825d.pth"),
    lpips_net: str = typer.Option("alex", "--lpips-net", help="alex | vgg"),
    lpips_backbone: Optional[str] = typer.Option(None, "--lpips-backbone", help="pretrained | untrained (default: follows --feature-extractor)"),
    lpips_weights: Optional[Path] = typer.Option(None, "--lpips-weights", help="alexnet-owt-7be5be79.pth or vgg16-397923af.pth"),
    ssim_greyscale: bool = typer.Option(False, "--ssim-greyscale", help="SSIM on luma (the HR-VITON protocol)"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Evaluate a model on a dataset, or any folder of outputs against a reference folder.

    Examples:
      evaluate --model smis --data data/ds --protocol paired --feature-extractor untrained
      evaluate --images outputs/ --reference data/test/image --inception-weights pt_inception-2015-12-05-6726825d.pth
      evaluate --baseline paste --data data/ds --size 64x48 --feature-extractor untrained
    """
    import torch
    from rich.console import Console

    from rich.markup import escape

    from eval.runner import Protocol, evaluate_folders, evaluate_model, limit_heap_fragmentation

    console = Console()
    limit_heap_fragmentation()  # peak memory flat in the number of images (see its docstring)
    if protocol not in ("paired", "unpaired"):
        raise typer.BadParameter(f"--protocol {protocol!r}; valid: paired, unpaired")
    if device not in ("auto", "cpu", "cuda"):
        raise typer.BadParameter(f"--device {device!r}; valid: auto, cpu, cuda")
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    proto = Protocol(
        protocol=protocol, size=_size(size), feature_extractor=feature_extractor,
        inception_weights=str(inception_weights) if inception_weights else None, lpips_net=lpips_net,
        lpips_backbone=lpips_backbone or ("untrained" if feature_extractor == "untrained" else "pretrained"),
        lpips_weights=str(lpips_weights) if lpips_weights else None, ssim_greyscale=ssim_greyscale, batch_size=batch_size, seed=seed,
        score_pixels=score_pixels,
    )
    try:
        if images is not None:
            if reference is None:
                raise typer.BadParameter("--images needs --reference")
            run = evaluate_folders(images, reference, proto, out, dev)
        elif baseline is not None:
            if data is None or model is not None:
                raise typer.BadParameter("--baseline needs --data (and no --model)")
            from eval.baselines import make_baseline

            generator = make_baseline(baseline, proto.size)
            run = evaluate_model(generator.name, None, data, split, proto, out, dev, generator=generator)
        else:
            if model is None or data is None:
                raise typer.BadParameter("pass --model and --data (or --images and --reference)")
            run = evaluate_model(model, checkpoint, data, split, proto, out, dev, label_set=label_set)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    from eval.record import read_summary

    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun: rank 0 reports
        return
    summary = read_summary(run)
    if summary.get("not_scored"):
        console.print(f"{summary['model']} ({summary['protocol']['protocol']}): not scored: {summary['not_scored']}", highlight=False)
        console.print(f"run record: {run / 'summary.json'}")
        return
    m = summary["metrics"]
    shown = "  ".join(f"{k} {m[k]:.4f}" for k in ("fid", "kid", "lpips", "ssim", "psnr") if m.get(k) is not None)
    console.print(f"{summary['model']} ({summary['protocol']['protocol']}, {summary['n_images']} images): {shown}")
    if not summary["comparable_to_published"]:
        console.print(f"[yellow]{summary['warning']}")
    console.print(f"run record: {run / 'summary.json'}")


def main() -> None:
    app()


if __name__ == "__main__":  # `python -m eval.cli` (e.g. under torchrun --nproc-per-node N -m eval.cli ...)
    app()
