"""The ``pix2gan`` command line: parse options, build configs, call the library, print results.

Every user error (bad file, bad option value, existing output) is one line on stderr and exit code 2; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from pix2gan.options import default_help
from pix2gan_cli import tools
from pix2gan_cli.common import (
    Command,
    OneLineUsageErrors,
    console,
    err,
    flag as _flag,
    models_spec,
    opt as _opt,
    print_error,
    state,
    train_config,
    user_errors,
)
from pix2gan_cli.launch import launch_torchrun


app = typer.Typer(
    cls=OneLineUsageErrors,
    name="pix2gan",
    help="Image-to-image translation for medical volumes: pix2pix U-Net + PatchGAN modality synthesis (e.g. T1 -> CT).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks (for bug reports).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors in the log.")] = False,
) -> None:
    """pix2gan: train, translate, evaluate and make phantom data."""
    from rich.logging import RichHandler

    state["debug"] = debug
    quiet = quiet or os.environ.get("RANK", "0") != "0"  # under torchrun only rank 0 reports progress
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, show_time=False, markup=False)],
        force=True,
    )


# --------------------------------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------------------------------
@app.command(cls=Command)
@user_errors
def train(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(help="YAML (.yaml, .yml) or JSON file of settings: the option names below (src: t1, gan-loss: lsgan, planes: \\[axial, coronal]), or a run's config.json to train that run again. Options given here win over the file.", show_default=False)] = None,
    mode: Annotated[str | None, typer.Option(help="paired (pix2pix SRC -> DST), unpaired (CycleGAN SRC <-> DST: unregistered or unpaired scans), noise (DCGAN) or class (class-conditional GAN). \\[default: paired]", show_default=False)] = None,
    src: Annotated[str | None, _opt("src", "Source modality (volume name without its extension: t1 for t1.nii.gz or t1.mha), the network input; paired: several, comma-separated, for one model from all of them (t1,zte: many-to-one).")] = None,
    dst: Annotated[str | None, _opt("dst", "Target modality to synthesise.")] = None,
    data: Annotated[str | None, typer.Option(help="Paired: <DATA>/<subject>/<modality>.nii.gz (or .nii, .mha, .mhd, .nrrd, .nhdr, or a DICOM series folder <modality>/). Noise/class: an image folder (class = subfolder), a NIfTI folder (slices of --src), or mnist / fashion-mnist / cifar10. \\[default: the bundled samples/]", show_default=False)] = None,
    data_b: Annotated[str | None, typer.Option("--data-b", help="Unpaired runs on 2-D images (horse <-> zebra): folder B of PNG, JPEG or BMP images (the targets); --data is then folder A (the sources), and --src / --dst only name the two (default: the folders' names). Images are centre-cropped and resized to --image-size.", show_default=False)] = None,
    mask: Annotated[str | None, _opt("mask", "Body-mask modality used for metrics and slice selection ('' for none).")] = None,
    run_dir: Annotated[Path | None, typer.Option(help="Run folder to create. \\[default: $PIX2GAN_RUNS (else runs)/<src>2<dst>-<date>-<time>, .../<mode>-... for GANs]", show_default=False)] = None,
    generator: Annotated[str | None, _opt("generator", "Generator architecture: unet (pix2pix U-Net) for paired runs, resnet9 for unpaired runs (both ways); dcgan for noise/class runs (see docs/architecture.md for all).")] = None,
    discriminator: Annotated[str | None, _opt("discriminator", "Discriminator architecture: patchgan for paired runs; dcgan for noise/class runs.")] = None,
    epochs: Annotated[int | None, _opt("epochs", "Epochs; the learning rate decays linearly to 0 over the second half.", min=1)] = None,
    minutes: Annotated[float | None, typer.Option(min=0.0, show_default=False, help="Train for about this many minutes instead of a set number of epochs: epoch 1 is timed, the count of epochs settled from it once (recorded in the run's config.json, so --resume repeats it) and the learning-rate schedule sized for it. Not with --epochs.")] = None,
    batch_size: Annotated[int | None, _opt("batch_size", "Images per step.", min=1)] = None,
    image_size: Annotated[int | None, _opt("image_size", "Paired: side of the random training crop, a multiple of the generator's padding multiple (2^depth for the U-Net). Noise/class: 28, 32, 64 or 128.", min=1)] = None,
    depth: Annotated[int | None, _opt("depth", "U-Net down-sampling steps (8 = pix2pix unet_256).", min=2, max=10)] = None,
    filters: Annotated[int | None, _opt("filters", "Generator filters (ngf; pix2pix and DCGAN use 64).", min=1)] = None,
    disc_filters: Annotated[int | None, _opt("disc_filters", "Discriminator filters in the first layer (ndf; 64 in the papers).", min=1)] = None,
    disc_layers: Annotated[int | None, _opt("disc_layers", "PatchGAN strided layers (3 = 70x70 patches).", min=1, max=6)] = None,
    norm: Annotated[str | None, _opt("norm", "Normalisation layers: batch or instance.")] = None,
    dropout: Annotated[bool | None, _flag(f"Dropout in the deepest decoder levels (pix2pix). {default_help('dropout')}", "--dropout/--no-dropout")] = None,
    gan_loss: Annotated[str | None, _opt("gan_loss", "Adversarial loss: lsgan (least squares), vanilla (BCE with logits), hinge, or none (paired: pure regression, no discriminator).")] = None,
    gan_warmup: Annotated[float | None, _opt("gan_warmup", "Paired: fraction F of the epochs trained by regression alone (no discriminator) before the adversarial term switches on, after round(F x epochs) epochs; the generator at the switch is kept for translate --realism. Implies --gan-loss lsgan unless given.", min=0.0)] = None,
    lambda_cycle: Annotated[float | None, _opt("lambda_cycle", "Unpaired: weight of each direction's cycle-consistency L1 (CycleGAN: 10).", min=0.0)] = None,
    lambda_identity: Annotated[float | None, _opt("lambda_identity", "Unpaired: weight of the identity L1s as a fraction of --lambda-cycle (CycleGAN: 0.5; 0: off).", min=0.0)] = None,
    pool_size: Annotated[int | None, _opt("pool_size", "Unpaired: generated images kept in each discriminator's history pool (CycleGAN: 50; 0: none).", min=0)] = None,
    lambda_l1: Annotated[float | None, _opt("lambda_l1", "Weight of the L1 reconstruction term (pix2pix: 100; the paired default's 10 goes with its --gan-warmup, and 100 comes back without a warm-up).", min=0.0)] = None,
    lr: Annotated[float | None, _opt("lr", "Adam learning rate of the generator, and of the discriminator unless --lr-d (> 0). Paired runs without a GAN term or with --gan-warmup (a regression until the switch; D then keeps 2e-4) default to 1e-3, adversarial from the first step to pix2pix's 2e-4.")] = None,
    lr_d: Annotated[float | None, typer.Option(help="Discriminator learning rate, when it should differ from --lr (TTUR). \\[default: --lr]", show_default=False)] = None,
    lr_gan: Annotated[float | None, typer.Option(help="Paired, with --gan-warmup: the generator's learning rate after the switch, where its schedule starts again (constant, then linear decay to 0). \\[default: --lr]", show_default=False)] = None,
    beta1: Annotated[float | None, _opt("beta1", "Adam beta1.", min=0.0, max=1.0)] = None,
    beta2: Annotated[float | None, _opt("beta2", "Adam beta2.", min=0.0, max=1.0)] = None,
    slice_axis: Annotated[int | None, _opt("slice_axis", "Array axis to slice along (2 = axial); the one-plane case.", min=0, max=2)] = None,
    planes: Annotated[list[str] | None, typer.Option(help="Paired: anatomical planes to train on, any of axial coronal sagittal (e.g. --planes axial,coronal,sagittal); one model learns them all and translate fuses them. \\[default: --slice-axis only]", show_default=False)] = None,
    context: Annotated[int | None, _opt("context", "Paired: neighbouring slices on each side fed to the generator as channels (2.5-D).", min=0, max=16)] = None,
    input_dropout: Annotated[float | None, _opt("input_dropout", "Paired, several --src: zero-fill each source with this probability in training (never all), with an availability channel per source, so the model translates from any subset of them (MM-GAN), e.g. 0.5.", min=0.0, max=0.99)] = None,
    mask_weight: Annotated[float | None, typer.Option(min=0.0, max=1.0, show_default=False, help="Paired: weight of the body-mask voxels in the L1 term, e.g. 0.95 (0.05 outside). \\[default: off, every voxel the same]")] = None,
    lambda_ssim: Annotated[float | None, _opt("lambda_ssim", "Paired: weight of an SSIM term (kornia) added to the generator's loss.", min=0.0)] = None,
    fusion: Annotated[str | None, _opt("fusion", "Paired: how translate combines planes, flips and models by default: mean or median.")] = None,
    tta: Annotated[bool | None, _flag(f"Paired: translate also mirrors each volume left-right and averages, by default (test-time augmentation). {default_help('tta')}", "--tta/--no-tta")] = None,
    realism: Annotated[float | None, _opt("realism", "Paired, with --gan-warmup: the generator translate uses by default, (1 - A) x regression + A x adversarial, weight by weight.", min=0.0, max=1.0)] = None,
    val_fraction: Annotated[float | None, _opt("val_fraction", "Share of subjects held out for validation.", min=0.0, max=0.9)] = None,
    test_fraction: Annotated[float | None, _opt("test_fraction", "Share of subjects held out for testing.", min=0.0, max=0.9)] = None,
    split_seed: Annotated[int | None, _opt("split_seed", "Seed of the subject split.")] = None,
    seed: Annotated[int | None, _opt("seed", "Seed of weights, crops and batch order.")] = None,
    flip: Annotated[bool | None, _flag(f"Random left-right flips of training pairs. {default_help('flip')}", "--flip/--no-flip")] = None,
    device: Annotated[str | None, _opt("device", "auto (CUDA if available), cpu or cuda[:N].")] = None,
    workers: Annotated[int | None, _opt("workers", "DataLoader worker processes.", min=0)] = None,
    threads: Annotated[int | None, _opt("threads", "CPU threads for torch (0 = torch's default).", min=0)] = None,
    progress: Annotated[bool, _flag("Show the progress bar. [default: on]", "--progress/--no-progress")] = True,
    latent_dim: Annotated[int | None, _opt("latent_dim", "Noise/class: size of the latent vector z.", min=1)] = None,
    channels: Annotated[int | None, typer.Option(min=1, max=3, show_default=False, help="Noise/class: image channels, 1 or 3. \\[default: from the data]")] = None,
    embed_dim: Annotated[int | None, _opt("embed_dim", "Class: size of the label embedding concatenated with z.", min=1)] = None,
    d_steps: Annotated[int | None, _opt("d_steps", "Noise/class: discriminator updates per generator update.", min=1)] = None,
    label_smoothing: Annotated[float | None, _opt("label_smoothing", "Noise/class: one-sided label smoothing (real label = 1 - this).", min=0.0, max=0.49)] = None,
    augment: Annotated[bool | None, _flag(f"Noise/class: differentiable augmentation of D's inputs (DiffAugment), against D memorising small data. {default_help('augment')}", "--augment/--no-augment")] = None,
    labels: Annotated[str | None, typer.Option(help="Class mode on NIfTI data: 'level' (anatomical level of the slice, the default) or a CSV subject,label.", show_default=False)] = None,
    data_root: Annotated[Path | None, typer.Option(help="Folder holding the mnist / fashion-mnist / cifar10 files.", show_default=False)] = None,
    download: Annotated[bool | None, _flag("Let torchvision download --data (never done otherwise). [default: off]", "--download/--no-download")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the run in this folder from its newest checkpoint, with the options it was started with (other options are ignored).", show_default=False)] = None,
    checkpoint_every: Annotated[int | None, _opt("checkpoint_every", "Also save a checkpoint every N steps (0: at the end of each epoch only).", min=0)] = None,
    checkpoint_minutes: Annotated[float | None, _opt("checkpoint_minutes", "Also save a checkpoint when this many minutes passed since the last one (0: off).", min=0.0)] = None,
    keep_last: Annotated[int | None, _opt("keep_last", "Step checkpoints to keep besides latest.pt and best.pt.", min=1)] = None,
    max_nonfinite: Annotated[int | None, _opt("max_nonfinite", "Stop after this many steps in a row with a non-finite loss (each is skipped).", min=1)] = None,
    precision: Annotated[str | None, _opt("precision", "Forward passes in auto (bf16 on GPUs that have it, else fp32), fp32, bf16 or fp16 (with a gradient scaler).")] = None,
    channels_last: Annotated[bool | None, _flag("Channels-last memory format for networks and batches (faster convolutions on GPUs). [default: off]", "--channels-last/--no-channels-last")] = None,
    compile: Annotated[bool | None, _flag("torch.compile the networks (slow start, faster steps on GPUs). [default: off]", "--compile")] = None,
    device_crop: Annotated[bool | None, _flag("Paired: random crops and flips on the device with kornia (identical results). [default: on with CUDA]", "--device-crop/--no-device-crop")] = None,
    tensorboard: Annotated[bool | None, _flag(f"Also write TensorBoard event files to RUN/tb/ (losses, learning rates, validation figures, the epoch PNGs); needs pip install pix2gan[tensorboard]. {default_help('tensorboard')}", "--tensorboard/--no-tensorboard")] = None,
    nproc: Annotated[int, typer.Option(min=1, help="Train with DDP on this many processes on this machine (launches torchrun; one GPU each, or CPU ranks with gloo).")] = 1,
) -> None:
    """Train a model: paired T1 -> CT style synthesis (default), noise-to-image (DCGAN) or class-conditional GAN.

    Ctrl-C (or SIGTERM) finishes the current step, saves a checkpoint and prints how to continue with --resume.
    """
    from pix2gan.train import fit, resume_run

    if resume is not None and config is not None:
        raise ValueError("--config does not go with --resume (a run resumes with the configuration it started with)")
    if resume is None:
        cfg, run_dir = train_config(ctx.params)
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        launch_torchrun(nproc, run_dir, resume, err)
        return
    show = progress and err.is_terminal
    if resume is not None:
        result = resume_run(resume, progress=show, console=err)
    else:
        result = fit(cfg, run_dir, progress=show, console=err)
    if os.environ.get("RANK", "0") == "0":
        for line in result.summary_lines():
            err.print(line, highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------------------------------------------------
# translate
# --------------------------------------------------------------------------------------------------------------------
@app.command(cls=Command)
@user_errors
def translate(
    inputs: Annotated[
        list[Path] | None,
        typer.Argument(help="Volume files (.nii.gz, .nii, .mha, .mhd, .nrrd, .nhdr), DICOM series folders, folders of them, or subject folders (their <src> volume is used; a model of several sources finds each by name). A volume file is the model's first source. A run trained on two image folders (--data-b): PNG, JPEG or BMP images or folders of them, each translated into an 8-bit PNG of its size.", show_default=False),
    ] = None,
    input_: Annotated[list[str] | None, typer.Option("--input", metavar="NAME=PATH", help="Models of several sources (--src t1,zte): another source of the one volume given, NAME=PATH (e.g. --input zte=scan_zte.nii.gz); repeatable. A model trained with --input-dropout also takes named sources alone (no volume given; output beside the first).", show_default=False)] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output file (one input; its extension picks the format) or folder. Default: the input's format, <name>_<dst>.<ext> beside each input file; a derived series <folder>_<dst>/ for a DICOM series; <folder>_<dst>/ for a folder."),
    ] = None,
    series: Annotated[str | None, typer.Option(help="SeriesInstanceUID to translate when a DICOM folder holds several series.", show_default=False)] = None,
    run: Annotated[list[Path] | None, typer.Option(help="Run folder whose best checkpoint to use; repeat for an ensemble (--run A --run B averages their predictions). Default: newest under $PIX2GAN_RUNS (else ./runs).", show_default=False)] = None,
    checkpoint: Annotated[list[Path] | None, typer.Option(help="Checkpoint file to use instead of a run folder; repeatable like --run.", show_default=False)] = None,
    model: Annotated[list[Path] | None, typer.Option(help="Exported model (.onnx or .pt2, from pix2gan export) to use instead of a checkpoint; repeatable, and combined with --run / --checkpoint into one ensemble. .onnx needs pix2gan[onnx].", show_default=False)] = None,
    tta: Annotated[bool | None, typer.Option("--tta/--no-tta", help="Also translate the left-right mirrored volume and average (test-time augmentation). \\[default: as the model was trained to recommend]", show_default=False)] = None,
    fusion: Annotated[str | None, typer.Option(help="Combine planes, flips and models by their mean or median. \\[default: the model's]", show_default=False)] = None,
    realism: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Models trained with --gan-warmup: the generator (1 - A) x regression + A x adversarial, weight by weight (0: the regression snapshot, 1: the adversarial model); ensemble members without both generators are used as they are. \\[default: the run's recorded realism]", show_default=False)] = None,
    reverse: Annotated[bool, typer.Option("--reverse", help="Unpaired (CycleGAN) runs: translate the other way, DST -> SRC, with G_ba (e.g. ct -> t1); inputs are DST volumes (a subject folder's <dst>), outputs <name>_<src>.")] = False,
    uncertainty: Annotated[bool, typer.Option("--uncertainty", help="Also write <output>_std (same format): the voxel-wise standard deviation across planes, flips and models, in physical units.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace existing output files.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    batch_size: Annotated[int, typer.Option(min=1, help="Input slices per forward pass (a 2.5-D model with K neighbours on each side takes 2K + 1 per translated slice, from each of its sources); volumes stream through in batches of this size, so it sets the memory used beyond the volume itself.")] = 16,
    dtype: Annotated[str, typer.Option(help="Output voxel type: float32, or int16 (rounded, slope 1, intercept 0). A DICOM series always stores int16 with a rescale.")] = "float32",
    precision: Annotated[str, typer.Option(help="Generator arithmetic: auto (bf16 on GPUs that have it, else fp32), fp32, bf16 or fp16.")] = "auto",
    nproc: Annotated[int, typer.Option(min=1, help="Worker processes sharing the volumes, each loading the model(s) once: one GPU each (cuda:i) with --device auto or cuda, else CPU processes with cores / N threads each.")] = 1,
) -> None:
    """Translate volumes with a trained model (or an ensemble); outputs lie on the input's grid, in its format (NIfTI
    header fields bit for bit; ITK origin, spacing, direction; a DICOM series gives a derived series of the same
    study and frame of reference). Models are used as they were trained: their planes, context and recommended
    test-time augmentation.

    With several volumes, one that cannot be read or translated is reported (one error line), skipped, and the others
    go on; the summary lists the failures and the exit code is then 2."""
    from pix2gan.infer.batch import WorkerError, planning_device, torchrun_rank, translate_many
    from pix2gan.infer.images import image_run_translator
    from pix2gan.infer.inputs import parse_inputs
    from pix2gan.infer.outputs import plan_outputs
    from pix2gan.infer.translate import load_ensemble
    from pix2gan_cli.translating import file_lines, print_summary, translate_images

    if dtype not in ("float32", "int16"):
        raise ValueError(f"--dtype must be float32 or int16, got {dtype!r}")
    spec = models_spec(run, checkpoint, model, device=device, batch_size=batch_size, precision=precision, tta=tta,
                       fusion=fusion, realism=realism, reverse=reverse)  # fmt: skip
    if (images := image_run_translator(spec)) is not None:  # a run trained on two image folders: PNGs out
        unused = {"--uncertainty": uncertainty, "--tta/--no-tta": tta is not None, "--fusion": fusion,
                  "--series": series, "--realism": realism is not None, "--dtype": dtype != "float32",
                  "--nproc": nproc > 1, "--input": bool(input_)}  # fmt: skip
        translate_images(images, inputs or [], output, overwrite=overwrite, unused=[k for k, v in unused.items() if v])
        return
    translator = load_ensemble(**{**spec, "device": planning_device(device, nproc)})
    data = translator.members[0].config.data
    named = parse_inputs(input_ or [], translator.sources, model=translator.members[0].name)
    plan = plan_outputs(inputs or [], output, src=data.src, dst=data.dst, overwrite=overwrite, uncertainty=uncertainty,
                        named=named)  # fmt: skip
    keep_going = len(plan) > 1  # one volume: its error is the command's (one line, exit 2)
    t0 = time.perf_counter()
    try:
        with file_lines(len(plan), bar=keep_going and err.is_terminal and torchrun_rank() is None) as show:
            result = translate_many(plan, spec, nproc=nproc, ensemble=None if nproc > 1 else translator,
                                    overwrite=overwrite, dtype=dtype, uncertainty=uncertainty, series=series,
                                    keep_going=keep_going, on_result=show)  # fmt: skip
    except WorkerError as exc:
        if state["debug"]:
            raise
        print_error(str(exc))
        raise typer.Exit(1) from None
    if not result.report:  # a torchrun rank other than 0: rank 0 reports every rank's volumes
        return
    print_summary(result, translator, time.perf_counter() - t0 if keep_going else None)
    if result.failed:
        raise typer.Exit(2)


# --------------------------------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------------------------------
@app.command(
    "eval",
    cls=Command,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
)
@user_errors
def eval_(
    ctx: typer.Context,
    metrics: Annotated[
        list[str], typer.Option("--metrics", "-m", help="Metrics: any of mae psnr ssim (distortion) and nps sharpness hu_w1 (realism, CT targets only; 'realism' names all three), e.g. --metrics psnr ssim.")
    ] = ["mae", "psnr", "ssim", "nps", "sharpness", "hu_w1"],  # noqa: B006  (typer needs a literal default)
    run: Annotated[Path | None, typer.Option(help="Run folder to evaluate. Default: newest under $PIX2GAN_RUNS (else ./runs).")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="Checkpoint of the run to use (default: best, else latest).")] = None,
    split: Annotated[str, typer.Option(help="Subjects to evaluate: test, val or train.")] = "test",
    data: Annotated[Path | None, typer.Option(help="Data folder (default: the one the run was trained on).")] = None,
    baseline: Annotated[bool, typer.Option(help="Also score the per-voxel lookup-table baseline fitted on the training subjects.")] = True,
    pred: Annotated[Path | None, typer.Option(help="Folder of external predictions (matched to --target by file name).")] = None,
    target: Annotated[Path | None, typer.Option(help="Folder of ground-truth volumes for --pred.")] = None,
    mask: Annotated[Path | None, typer.Option(help="Folder of body masks for --pred (same file names).")] = None,
    source: Annotated[Path | None, typer.Option(help="Folder of source volumes for --pred, drawn in the panels (same file names).")] = None,
    rules: Annotated[str, typer.Option(help="Scoring rules: synthrad2023 (CT clipped to [-1024, 3000] HU, masked SSIM) or synthrad2025 (CT clipped to [-1024, 3071] HU, masked MS-SSIM). MR targets are scored in the normalised [-1, 1] space either way.")] = "synthrad2023",
    ct_window: Annotated[bool, typer.Option(help="For --pred: the targets are CT, scored in HU under the rules' window; --no-ct-window: MR targets, scored in the normalised space (each target's percentiles 0.5/99.5, applied to both).")] = True,
    out: Annotated[Path | None, typer.Option(help="Folder for predictions and panels (default RUN/eval/<split> or <pred>_eval).")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write per-subject, mean and std metrics to this JSON file.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    tta: Annotated[bool | None, typer.Option("--tta/--no-tta", help="Paired runs: test-time flips as translate would use them. \\[default: the model's recommendation]", show_default=False)] = None,
    fusion: Annotated[str | None, typer.Option(help="Paired runs: mean or median over planes and flips. \\[default: the model's]", show_default=False)] = None,
    realism: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Paired runs trained with --gan-warmup: the generator to score, (1 - A) x regression + A x adversarial (as translate --realism). \\[default: the run's recorded realism]", show_default=False)] = None,
    dial: Annotated[bool | None, typer.Option("--dial/--no-dial", help="Paired runs trained with --gan-warmup: also score the realism dial at A = 0, 0.5 and 1 (RUN/eval/dial.json, dial.png, a table; two more translations of the split). \\[default: on when the checkpoint holds both generators]", show_default=False)] = None,
    sources: Annotated[str | None, typer.Option(help="Paired runs of several sources (--src t1,zte): translate the test subjects from these only, comma-separated (e.g. --sources t1), for a model trained with --input-dropout; predictions go to sources-<names>/. \\[default: all the model's sources]", show_default=False)] = None,
    uncertainty: Annotated[bool | None, typer.Option("--uncertainty/--no-uncertainty", help="Paired runs: write and score the standard deviation across predictions (Spearman with the error). \\[default: on when a model makes several predictions]", show_default=False)] = None,
    n_per_class: Annotated[int, typer.Option(min=1, help="Class runs: generated images per class.")] = 200,
    n_samples: Annotated[int, typer.Option(min=2, help="Noise runs: generated images (also caps the real images used).")] = 1000,
    inception_weights: Annotated[Path | None, typer.Option(help="Noise/class runs: InceptionV3 weights file for FID/KID (never downloaded).")] = None,
) -> None:
    """Score a run on its held-out test subjects (SynthRAD rules for CT), or external predictions with --pred/--target."""
    from pix2gan.evaluation import check_metrics, check_rules, check_split, evaluate_folders
    from pix2gan.io import check_new_file

    names = check_metrics([m for item in [*metrics, *ctx.args] for m in item.split(",")])
    check_split(split)
    rules = check_rules(rules).name
    if json_path is not None:
        check_new_file(json_path, overwrite=True)  # refused now rather than after the evaluation
    if out is not None:
        from pix2gan.io import check_output_folder

        check_output_folder(out)
    if pred is not None or target is not None:
        if pred is None or target is None:
            raise ValueError("--pred and --target go together")
        if dial:
            raise ValueError("--dial scores a run's generators at several realisms; not with --pred/--target")
        if sources:
            raise ValueError("--sources picks the inputs a run's model is given; not with --pred/--target")
        report = evaluate_folders(pred, target, mask, metrics=names, modality="ct" if ct_window else "mr", rules=rules,
                                  out_dir=out, source_dir=source, progress=err.is_terminal)  # fmt: skip
        title = f"{pred} vs {target}"
    else:
        from pix2gan.evaluation import EvalOptions, GanEvalReport, evaluate
        from pix2gan.runs import resolve_run

        ref = resolve_run(run, checkpoint)
        options = EvalOptions(metrics=tuple(names), split=split, data_root=data, baseline=baseline,
                              n_per_class=n_per_class, n_samples=n_samples, inception_weights=inception_weights,
                              out_dir=out, device=device, progress=err.is_terminal, tta=tta, fusion=fusion,
                              uncertainty=uncertainty, rules=rules, realism=realism, dial=dial,
                              sources=None if sources is None else tuple(n.strip() for n in sources.split(",")))  # fmt: skip
        report = evaluate(ref, options)
        if isinstance(report, GanEvalReport):
            from pix2gan_cli.show import print_gan_report

            print_gan_report(console, err, report, f"{ref.run_dir} - {report.mode} mode")
            if json_path is not None:
                report.write_json(json_path)
                err.print(f"metrics written to {json_path}", highlight=False, soft_wrap=True)
            tools.report_after_eval(ref.run_dir, report, report.mode)
            return
        title = f"{ref.run_dir} - {split} subjects" + (f" (from {report.sources_line()})" if report.sources else "")
    from pix2gan_cli.show import print_paired_report

    print_paired_report(console, report, title)
    if report.dial is not None:
        from pix2gan_cli.show import print_dial

        print_dial(console, report.dial)
        err.print(f"dial: {report.dial.image}", highlight=False, soft_wrap=True)
    if json_path is not None:
        report.write_json(json_path)
        err.print(f"metrics written to {json_path}", highlight=False, soft_wrap=True)
    if report.panels:
        err.print(f"panels: {report.panels[0].parent}/", highlight=False, soft_wrap=True)
    if pred is None and not report.missing:  # a run was evaluated (from all its sources): keep its figures and
        tools.report_after_eval(ref.run_dir, report, "paired", split)  # write its report again


# --------------------------------------------------------------------------------------------------------------------
# sample, report, export, phantoms (cli/tools.py)
# --------------------------------------------------------------------------------------------------------------------
for _command in (tools.sample, tools.report, tools.export, tools.phantoms):
    app.command(cls=Command)(_command)
app.command("samples", cls=Command, hidden=True)(tools.phantoms)  # the phantoms command's first name


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("KMP_WARNINGS", "0")
    app(prog_name="pix2gan")


if __name__ == "__main__":
    sys.exit(main())
