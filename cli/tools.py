"""The smaller commands of the ``pix2gan`` command line: ``sample``, ``report``, ``export`` and ``phantoms`` (registered
on the app in :mod:`pix2gan_cli.app`); and what ``eval`` does with a run's report afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from pix2gan_cli.common import console, err, flag, user_errors

__all__ = ["sample", "report", "report_after_eval", "export", "phantoms"]


# --------------------------------------------------------------------------------------------------------------------
# sample
# --------------------------------------------------------------------------------------------------------------------
@user_errors
def sample(
    run: Annotated[Path | None, typer.Option(help="Run folder (default: newest under $PIX2GAN_RUNS, else ./runs).")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="Checkpoint to use instead of the run's latest/best.")] = None,
    n: Annotated[int, typer.Option("--n", min=1, max=1024, help="Number of samples in the grid.")] = 64,
    label: Annotated[str | None, typer.Option(help="Class mode: a class name (or index), or 'all' for one row per class. [default: all]", show_default=False)] = None,
    seed: Annotated[int, typer.Option(help="Seed of the latent vectors (same seed, same images).")] = 0,
    walk: Annotated[int | None, typer.Option(help="Sweep latent coordinate DIM over [-span, span]: a row per value, a column per seed.", show_default=False)] = None,
    span: Annotated[float, typer.Option(min=0.0, help="Range of --walk.")] = 3.0,
    steps: Annotated[int, typer.Option(min=2, max=32, help="Values of --walk / points of --interpolate.")] = 9,
    interpolate: Annotated[bool, typer.Option("--interpolate", help="Spherical interpolation from --seed to --seed-b.")] = False,
    seed_b: Annotated[int, typer.Option(help="Second seed of --interpolate.")] = 1,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="PNG to write. [default: RUN/samples/<kind>-seed<K>.png]", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing PNG.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
) -> None:
    """Draw samples: grids, latent walks and interpolations (noise/class runs), source | prediction panels (paired),
    a -> b -> a and b -> a -> b panels (unpaired)."""
    from pix2gan.infer.sample import SampleRequest, draw
    from pix2gan.runs import resolve_run

    request = SampleRequest(n=n, label=label, seed=seed, walk=walk, span=span, steps=steps, interpolate=interpolate,
                            seed_b=seed_b)  # fmt: skip
    out, what = draw(resolve_run(run, checkpoint), request, output=output, overwrite=overwrite, device=device)
    console.print(f"{what} -> {out}", highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------------------------
@user_errors
def report(
    run: Annotated[Path | None, typer.Argument(metavar="RUN", help="Run folder. \\[default: the newest run under $PIX2GAN_RUNS, else ./runs]", show_default=False)] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="HTML file to write. \\[default: RUN/report.html, replaced]", show_default=False)] = None,
) -> None:
    """Write RUN/report.html, one self-contained page of the run; prints its path.

    The configuration, split, curves, evaluation and panels, images embedded, no network, built from the run
    folder's files alone (no model needed)."""
    from pix2gan.reporting import write_html_report
    from pix2gan.runs import find_latest_run

    page = write_html_report(run if run is not None else find_latest_run(), out=output)
    console.print(str(page), highlight=False, soft_wrap=True)


def report_after_eval(run_dir: Path, report: Any, mode: str, split: str | None = None) -> None:
    """After ``eval`` of a run: keep its figures in the run folder (where the report finds them) and write the run's
    report again. The evaluation is done and printed by then, so a failure here is one warning, not an error."""
    from pix2gan.errors import InputError
    from pix2gan.reporting import eval_json_path, write_html_report

    try:
        report.write_json(eval_json_path(run_dir, mode, split))
        page = write_html_report(run_dir)
    except (InputError, OSError, ValueError) as exc:
        err.print(f"[yellow]warning:[/] report not written: {escape(' '.join(str(exc).split()))}", highlight=False,
                  soft_wrap=True)  # fmt: skip
        return
    err.print(f"report: {page}", highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------------------------------
@user_errors
def export(
    run: Annotated[Path | None, typer.Option(help="Run folder whose best checkpoint to export. Default: the newest run.", show_default=False)] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="Checkpoint to export instead of the run's best.", show_default=False)] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (.onnx or .pt2). \\[default: RUN/export/model.onnx, or .pt2; model_reverse.* with --reverse]", show_default=False)] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="onnx (onnxruntime, no PyTorch needed to run it) or pt2 (a torch.export program). \\[default: from -o's extension, else onnx]", show_default=False)] = None,
    overwrite: Annotated[bool, flag("Replace an existing file.", "--overwrite")] = False,
    realism: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Runs trained with --gan-warmup: export the generator (1 - A) x regression + A x adversarial (as translate --realism). \\[default: the run's recorded realism]", show_default=False)] = None,
    reverse: Annotated[bool, typer.Option("--reverse", help="Unpaired (CycleGAN) runs: export G_ba, DST -> SRC (e.g. ct -> t1), instead of G_ab; translate --model FILE then translates that way.")] = False,
) -> None:
    """Export a paired run's generator (an unpaired run's G_ab, or G_ba with --reverse) to ONNX or a PyTorch .pt2 program.

    Its configuration and intensity maps go inside: `translate --model FILE` uses it as it would the checkpoint, and
    onnxruntime runs it alone."""
    from pix2gan.infer.export import export_run
    from pix2gan.runs import resolve_run

    ref = resolve_run(run, checkpoint)
    result = export_run(ref.checkpoint, ref.run_dir, output=output, fmt=fmt, overwrite=overwrite, realism=realism,
                        reverse=reverse)  # fmt: skip
    meta = result.metadata
    console.print(f"{ref.checkpoint} -> {result.path} ({result.format}, {result.size / 1e6:.2f} MB)", highlight=False, soft_wrap=True)
    console.print(f"{meta.shape_rule()}: pad slices with -1 up to multiples of {meta.multiple}", highlight=False, soft_wrap=True)
    console.print(f"model: {escape(meta.describe())}", highlight=False, soft_wrap=True)  # (t1[k-1..k+1] is no markup)
    err.print(f"checked against PyTorch on 2 sizes: max |difference| {result.max_diff:.2g} in [-1, 1]", highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------------------------------------------------
# phantoms (also as the hidden alias `samples`, its first name)
# --------------------------------------------------------------------------------------------------------------------
@user_errors
def phantoms(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write <subject>/{t1,ct,mask}.nii.gz (and t2.nii.gz with --t2, zte.nii.gz with --zte) into.", show_default=False)],
    subjects: Annotated[int, typer.Option(min=1, max=1000, help="Number of subjects.")] = 14,
    size: Annotated[int, typer.Option(min=16, max=512, help="In-plane matrix size (voxels).")] = 128,
    seed: Annotated[int, typer.Option(help="Phantom family seed (same seed, same data).")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace existing subject folders.")] = False,
    t2: Annotated[bool, typer.Option("--t2/--no-t2", help="Also write a T2-weighted MR (t2.nii.gz); t1, ct and mask are the same either way.")] = False,
    zte: Annotated[bool, typer.Option("--zte/--no-zte", help="Also write a ZTE-like MR (zte.nii.gz: cortical bone intermediate, air dark, soft tissue nearly flat); t1, ct, mask (and t2) are the same either way.")] = False,
    misregister: Annotated[float | None, typer.Option(metavar="MM", help="Write each CT under a smooth random deformation of at most MM mm (0 < MM <= 20); the aligned CT, for scoring only, goes to <subject>/aligned/ct.nii.gz.", show_default=False)] = None,
    unpaired: Annotated[bool, flag("All but the last max(2, round(N/4)) subjects keep only their MR (even) or only their CT (odd); needs 4 subjects or more.", "--unpaired")] = False,
) -> None:
    """Generate deterministic synthetic head phantoms (paired T1, CT in HU, body mask; T2 with --t2, ZTE with --zte) for demos and tests.

    --misregister and --unpaired make sets that show why unpaired training exists (phantom.json says what each holds)."""
    from pix2gan.data.phantom import write_dataset

    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: exists and is not a folder")
    written = write_dataset(out_dir, n_subjects=subjects, size=size, seed=seed, overwrite=overwrite, t2=t2, zte=zte,
                            misregister_mm=misregister, unpaired=unpaired)  # fmt: skip
    console.print(f"wrote {len(written)} subjects to {out_dir}/ ({written[0].name} .. {written[-1].name})", highlight=False, soft_wrap=True)
