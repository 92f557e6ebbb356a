"""The ``pix2gan`` command line: parse options, build configs, call the library, print results.

Every user error (bad file, bad option value, existing output) is one line on stderr and exit code 2; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from pix2gan.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from rich.table import Table

app = typer.Typer(
    name="pix2gan",
    help="Image-to-image translation for medical volumes: pix2pix U-Net + PatchGAN modality synthesis (e.g. T1 -> CT).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console()
err = Console(stderr=True)
_state = {"debug": False}

F = TypeVar("F", bound=Callable[..., Any])
_D, _M, _T = DataConfig(), ModelConfig(), TrainConfig()  # the library's defaults are the CLI's defaults


def _user_errors(func: F) -> F:
    """Turn user errors into one red line on stderr and exit code 2 (tracebacks only with --debug)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pix2gan.volumes import InputError

        try:
            return func(*args, **kwargs)
        except (InputError, ValueError, FileExistsError, FileNotFoundError, PermissionError) as exc:
            if _state["debug"]:
                raise
            message = " ".join(str(exc).split())
            err.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False, markup=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]", highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _bundled_samples() -> Path:
    """The samples/ folder shipped with the source tree (or ./samples when run from elsewhere)."""
    import pix2gan

    here = Path(pix2gan.__file__).resolve().parent.parent / "samples"
    return here if here.is_dir() else Path("samples")


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks (for bug reports).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors in the log.")] = False,
) -> None:
    """pix2gan: train, translate, evaluate and make phantom data."""
    from rich.logging import RichHandler

    _state["debug"] = debug
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, show_time=False, markup=False)],
        force=True,
    )


# --------------------------------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------------------------------
@app.command()
@_user_errors
def train(
    src: Annotated[str, typer.Option(help="Source modality (file name without .nii.gz), the network input.")] = "t1",
    dst: Annotated[str, typer.Option(help="Target modality to synthesise.")] = "ct",
    data: Annotated[
        Path | None, typer.Option(help="Data folder <DATA>/<subject>/<modality>.nii.gz. Default: the bundled samples/.")
    ] = None,
    mask: Annotated[str, typer.Option(help="Body-mask modality used for metrics and slice selection ('' for none).")] = "mask",
    run_dir: Annotated[
        Path | None, typer.Option(help="Run folder to create. Default: runs/<src>2<dst>-<date>-<time>.")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs; the learning rate decays linearly to 0 over the second half.")] = _T.epochs,
    batch_size: Annotated[int, typer.Option(min=1, help="Slices per step.")] = _T.batch_size,
    image_size: Annotated[int, typer.Option(min=1, help="Side of the random square training crop; a multiple of 2^depth.")] = _T.image_size,
    depth: Annotated[int, typer.Option(min=2, max=10, help="U-Net down-sampling steps (8 = pix2pix unet_256).")] = _M.depth,
    filters: Annotated[int, typer.Option(min=1, help="Generator filters at the first level (ngf; pix2pix 64).")] = _M.base_filters,
    disc_filters: Annotated[int, typer.Option(min=1, help="Discriminator filters in the first layer (ndf; pix2pix 64).")] = _M.disc_filters,
    disc_layers: Annotated[int, typer.Option(min=1, max=6, help="PatchGAN strided layers (3 = 70x70 patches).")] = _M.disc_layers,
    norm: Annotated[str, typer.Option(help="Normalisation layers: batch or instance.")] = _M.norm.value,
    dropout: Annotated[bool, typer.Option(help="Dropout in the deepest decoder levels (pix2pix).")] = _M.dropout,
    gan_loss: Annotated[str, typer.Option(help="Adversarial loss: lsgan (least squares) or vanilla (BCE with logits).")] = _T.gan_loss.value,
    lambda_l1: Annotated[float, typer.Option(min=0.0, help="Weight of the L1 reconstruction term.")] = _T.lambda_l1,
    lr: Annotated[float, typer.Option(help="Adam learning rate of both networks (> 0).")] = _T.lr,
    beta1: Annotated[float, typer.Option(min=0.0, max=1.0, help="Adam beta1.")] = _T.betas[0],
    beta2: Annotated[float, typer.Option(min=0.0, max=1.0, help="Adam beta2.")] = _T.betas[1],
    slice_axis: Annotated[int, typer.Option(min=0, max=2, help="Array axis to slice along (2 = axial).")] = _D.slice_axis,
    val_fraction: Annotated[float, typer.Option(min=0.0, max=0.9, help="Share of subjects held out for validation.")] = _D.val_fraction,
    test_fraction: Annotated[float, typer.Option(min=0.0, max=0.9, help="Share of subjects held out for testing.")] = _D.test_fraction,
    split_seed: Annotated[int, typer.Option(help="Seed of the subject split.")] = _D.split_seed,
    seed: Annotated[int, typer.Option(help="Seed of weights, crops and batch order.")] = _T.seed,
    flip: Annotated[bool, typer.Option(help="Random left-right flips of training pairs.")] = _T.flip,
    device: Annotated[str, typer.Option(help="auto (CUDA if available), cpu or cuda[:N].")] = "auto",
    workers: Annotated[int, typer.Option(min=0, help="DataLoader worker processes.")] = 0,
    threads: Annotated[int, typer.Option(min=0, help="CPU threads for torch (0 = torch's default).")] = 0,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Train a paired translation model (U-Net generator + PatchGAN, GAN loss + lambda * L1) from SRC to DST."""
    from pix2gan.train import fit

    root = (data if data is not None else _bundled_samples()).resolve()
    cfg = RunConfig(
        data=DataConfig(
            root=str(root), src=src, dst=dst, mask=mask or None, slice_axis=slice_axis,
            src_intensity=DataConfig.default_intensity(src), dst_intensity=DataConfig.default_intensity(dst),
            val_fraction=val_fraction, test_fraction=test_fraction, split_seed=split_seed,
        ),
        model=ModelConfig(
            depth=depth, base_filters=filters, norm=norm, dropout=dropout, disc_filters=disc_filters,
            disc_layers=disc_layers,
        ),
        train=TrainConfig(
            epochs=epochs, batch_size=batch_size, image_size=image_size, lr=lr, betas=(beta1, beta2),
            lambda_l1=lambda_l1, gan_loss=gan_loss, seed=seed, flip=flip, num_workers=workers, device=device,
            threads=threads,
        ),
    )  # fmt: skip
    run = run_dir if run_dir is not None else Path("runs") / f"{src}2{dst}-{time.strftime('%Y%m%d-%H%M%S')}"
    result = fit(cfg, run, progress=progress and err.is_terminal, console=err)
    last = result.epochs[-1]
    err.print(f"[green]done[/] run folder {run}", highlight=False, soft_wrap=True)
    if "val_mae" in last:
        err.print(f"last epoch: validation MAE {last['val_mae']:.1f} (physical units, inside the mask)", highlight=False, soft_wrap=True)
    err.print(f"next: pix2gan eval --run {run}   |   pix2gan translate SCAN.nii.gz --run {run}", highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------------------------------------------------
# translate
# --------------------------------------------------------------------------------------------------------------------
@app.command()
@_user_errors
def translate(
    inputs: Annotated[
        list[Path],
        typer.Argument(help="NIfTI files, folders of them, or subject folders (their <src>.nii.gz is used).", show_default=False),
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output file (one input) or folder. Default: <name>_<dst>.nii.gz beside each input file; <folder>_<dst>/ for a folder."),
    ] = None,
    run: Annotated[Path | None, typer.Option(help="Run folder whose best checkpoint to use. Default: newest under ./runs.")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="Checkpoint file to use instead of a run folder.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing output files.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    batch_size: Annotated[int, typer.Option(min=1, help="Slices per forward pass.")] = 16,
    dtype: Annotated[str, typer.Option(help="Output voxel type: float32, or int16 (rounded, slope 1, intercept 0).")] = "float32",
) -> None:
    """Translate volumes with a trained model; outputs keep the input's shape, affine, q/s-form codes and pixdim."""
    from pix2gan.checkpoint import load_checkpoint, resolve_checkpoint
    from pix2gan.config import Mode
    from pix2gan.translate import Translator, plan_outputs

    ckpt = load_checkpoint(resolve_checkpoint(run, checkpoint), expect_mode=Mode.PAIRED)
    plan = plan_outputs(inputs, output, src=ckpt.config.data.src, dst=ckpt.config.data.dst, overwrite=overwrite)
    translator = Translator.from_checkpoint(ckpt, device=device, batch_size=batch_size)
    if dtype not in ("float32", "int16"):
        raise ValueError(f"--dtype must be float32 or int16, got {dtype!r}")
    items = plan
    if len(plan) > 1 and err.is_terminal:
        from rich.progress import track

        items = track(plan, description=f"translating {len(plan)} volumes", console=err, transient=True)
    for in_path, out_path in items:
        t0 = time.perf_counter()
        translator.translate_file(in_path, out_path, overwrite=overwrite, dtype=dtype)
        console.print(f"{in_path} -> {out_path} ({time.perf_counter() - t0:.1f} s)", highlight=False, soft_wrap=True)
    err.print(
        f"translated {len(plan)} volume(s) with {ckpt.path} ({ckpt.config.data.src} -> {ckpt.config.data.dst}, "
        f"{translator.device})",
        highlight=False, soft_wrap=True,
    )


# --------------------------------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------------------------------
@app.command(
    "eval",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
)
@_user_errors
def eval_(
    ctx: typer.Context,
    metrics: Annotated[
        list[str], typer.Option("--metrics", "-m", help="Metrics: any of mae psnr ssim, e.g. --metrics psnr ssim.")
    ] = ["mae", "psnr", "ssim"],  # noqa: B006  (typer needs a literal default)
    run: Annotated[Path | None, typer.Option(help="Run folder to evaluate. Default: newest under ./runs.")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="Checkpoint of the run to use (default: best, else latest).")] = None,
    split: Annotated[str, typer.Option(help="Subjects to evaluate: test, val or train.")] = "test",
    data: Annotated[Path | None, typer.Option(help="Data folder (default: the one the run was trained on).")] = None,
    baseline: Annotated[bool, typer.Option(help="Also score the per-voxel lookup-table baseline fitted on the training subjects.")] = True,
    pred: Annotated[Path | None, typer.Option(help="Folder of external predictions (matched to --target by file name).")] = None,
    target: Annotated[Path | None, typer.Option(help="Folder of ground-truth volumes for --pred.")] = None,
    mask: Annotated[Path | None, typer.Option(help="Folder of body masks for --pred (same file names).")] = None,
    source: Annotated[Path | None, typer.Option(help="Folder of source volumes for --pred, drawn in the panels (same file names).")] = None,
    ct_window: Annotated[bool, typer.Option(help="For --pred: CT rules (clip to [-1024, 3000] HU, range 4024); --no-ct-window for MR.")] = True,
    out: Annotated[Path | None, typer.Option(help="Folder for predictions and panels (default RUN/eval/<split> or <pred>_eval).")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write per-subject, mean and std metrics to this JSON file.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
) -> None:
    """Score a run on its held-out test subjects (SynthRAD rules for CT), or external predictions with --pred/--target."""
    from pix2gan.checkpoint import find_latest_run
    from pix2gan.evaluation import evaluate_folders, evaluate_run
    from pix2gan.metrics import METRICS

    names = [m.strip().lower() for item in [*metrics, *ctx.args] for m in item.split(",") if m.strip()]
    for name in names:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
    names = list(dict.fromkeys(names))
    if split not in ("test", "val", "train"):
        raise ValueError(f"--split must be test, val or train, got {split!r}")
    if pred is not None or target is not None:
        if pred is None or target is None:
            raise ValueError("--pred and --target go together")
        window = (-1024.0, 3000.0) if ct_window else None
        report = evaluate_folders(
            pred, target, mask, metrics=names, window=window, out_dir=out, source_dir=source, progress=err.is_terminal
        )
        title = f"{pred} vs {target}"
    else:
        if run is not None:
            run_dir = run
        elif checkpoint is not None and (checkpoint.parent.parent / "split.json").is_file():
            run_dir = checkpoint.parent.parent  # RUN/checkpoints/X.pt: the checkpoint's own run
        elif checkpoint is not None:
            raise ValueError(f"{checkpoint}: not inside a run folder; pass --run RUN_DIR for its split.json")
        else:
            run_dir = find_latest_run()
        report = evaluate_run(
            run_dir, checkpoint=checkpoint, metrics=names, split=split, data_root=data, out_dir=out,
            baseline=baseline, device=device, progress=err.is_terminal,
        )  # fmt: skip
        title = f"{run_dir} - {split} subjects"
    _print_report(report, title)
    if json_path is not None:
        report.write_json(json_path)
        err.print(f"metrics written to {json_path}", highlight=False, soft_wrap=True)
    if report.panels:
        err.print(f"panels: {report.panels[0].parent}/", highlight=False, soft_wrap=True)


def _fmt(metric: str, value: float) -> str:
    return f"{value:.4f}" if metric == "ssim" else f"{value:.2f}"


def _print_report(report, title: str) -> None:  # noqa: ANN001
    from pix2gan.evaluation import summarise

    units = {"mae": f"MAE ({report.unit})" if report.unit else "MAE", "psnr": "PSNR (dB)", "ssim": "SSIM"}
    table = Table(title=title, title_justify="left")
    table.add_column("subject")
    for m in report.metrics:
        table.add_column(units[m], justify="right")
    for sid, row in report.per_subject.items():
        table.add_row(sid, *(_fmt(m, row[m]) for m in report.metrics))
    mean, std = report.mean, report.std
    table.add_section()
    table.add_row("[bold]mean ± std", *(f"[bold]{_fmt(m, mean[m])} ± {_fmt(m, std[m])}" for m in report.metrics))
    if report.baseline_per_subject:
        bmean, bstd = summarise(report.baseline_per_subject)
        table.add_row(
            "[dim]lookup-table baseline", *(f"[dim]{_fmt(m, bmean[m])} ± {_fmt(m, bstd[m])}" for m in report.metrics)
        )
    console.print(table)


# --------------------------------------------------------------------------------------------------------------------
# samples
# --------------------------------------------------------------------------------------------------------------------
@app.command()
@_user_errors
def samples(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write <subject>/{t1,ct,mask}.nii.gz into.", show_default=False)],
    subjects: Annotated[int, typer.Option(min=1, max=1000, help="Number of subjects.")] = 14,
    size: Annotated[int, typer.Option(min=16, max=512, help="In-plane matrix size (voxels).")] = 128,
    seed: Annotated[int, typer.Option(help="Phantom family seed (same seed, same data).")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace existing subject folders.")] = False,
) -> None:
    """Generate deterministic synthetic head phantoms (paired T1, CT in HU, body mask) for demos and tests."""
    from pix2gan.data.phantom import write_dataset

    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: exists and is not a folder")
    written = write_dataset(out_dir, n_subjects=subjects, size=size, seed=seed, overwrite=overwrite)
    console.print(f"wrote {len(written)} subjects to {out_dir}/ ({written[0].name} .. {written[-1].name})", highlight=False, soft_wrap=True)


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("KMP_WARNINGS", "0")
    app(prog_name="pix2gan")


if __name__ == "__main__":
    sys.exit(main())
