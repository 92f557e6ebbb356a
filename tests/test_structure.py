"""The layout holds: no import circles (function-level imports included) and imports go one way, as
docs/architecture.md says; every module imports on its own; old checkpoints still work; Python callers get the CLI's
defaults."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import pix2gan
from pix2gan.checkpoint import load_checkpoint
from pix2gan.config import Mode, RunConfig
from pix2gan.infer.translate import Translator
from pix2gan.io import GEOMETRY_FIELDS
from pix2gan.runs import RunLayout
from pix2gan.train import fit
from pix2gan_cli.app import app

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory) -> Path:
    from pix2gan.data.digits import write_digit_folder

    root = tmp_path_factory.mktemp("digits") / "digits"
    write_digit_folder(root, per_class=8, size=28, seed=0)
    return root
MODULES = sorted(m.name for m in pkgutil.walk_packages(pix2gan.__path__, "pix2gan."))
ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"pix2gan": ROOT / "pix2gan", "pix2gan_cli": ROOT / "cli"}  # (pyproject.toml: package-dir)

# docs/architecture.md, "Imports go one way": a module imports only from its own part or from parts of lower layers
# (`pix2gan` is the package's __init__: the public names; checkpoint.py reads its __version__)
LAYERS = [{"errors", "device"}, {"config"}, {"options", "runs", "io"}, {"data", "losses"},
          {"nets", "reporting"}, {"pix2gan"}, {"checkpoint"}, {"infer"}, {"tasks"}, {"train", "evaluation"}, {"cli"}]


def _source_modules() -> dict[str, Path]:
    """Every module of pix2gan and of the CLI (pix2gan_cli, in cli/): dotted name -> file."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The modules of ``known`` that module ``name`` imports anywhere in its file: at the top, inside functions,
    methods and try blocks alike (``if TYPE_CHECKING:`` blocks aside: they never run). ``from a import b`` names
    module ``a.b`` when that is a module, else ``a``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets: set[str] = set()
    for node in ast.walk(tree):  # a pass of its own: ast.walk queues a node's children before it yields the node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join([*package[: len(package) - node.level + 1], *([node.module] if node.module else [])]) \
                if node.level else node.module  # fmt: skip
            targets.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else str(base) for a in node.names)
    edges = set()
    for target in targets:  # the module itself, else the package it lies in (a.b.c -> a.b)
        parts = target.split(".")
        while parts and ".".join(parts) not in known:
            parts.pop()
        if parts and ".".join(parts) != name:
            edges.add(".".join(parts))
    return edges


def import_graph() -> dict[str, set[str]]:
    """module -> the pix2gan / pix2gan_cli modules it imports (anywhere in the file)."""
    modules = _source_modules()
    return {name: _imports(path, name, set(modules)) for name, path in modules.items()}


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: its strongly connected components of more than one module (Tarjan's
    algorithm, iteratively), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = stack[stack.index(node):]
                del stack[stack.index(node):]
                if len(component) > 1:
                    circles.append(sorted(component))
    return circles


def _part(module: str) -> str:
    """The part of the code a module belongs to (a LAYERS name): ``pix2gan.io.nifti`` -> ``io``."""
    parts = module.split(".")
    return "cli" if parts[0] == "pix2gan_cli" else parts[1] if len(parts) > 1 else "pix2gan"


def test_import_circles_are_found_inside_functions_too(tmp_path):
    """The checker itself: a circle closed by an import inside a function is a circle; one under TYPE_CHECKING is not."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert import_circles(graph) == [["a", "b", "c"]]
    assert import_circles({"a": {"b"}, "b": set()}) == []
    known = {"pix2gan.x", "pix2gan.y", "pix2gan.w", "pix2gan.pkg", "pix2gan.pkg.z"}
    source = tmp_path / "x.py"
    source.write_text("import os\nfrom . import y\nif TYPE_CHECKING:\n    from pix2gan.w import T\n"
                      "def f():\n    from .pkg import z\n    from pix2gan.pkg import z as w\n    import pix2gan.pkg.q\n")
    assert _imports(source, "pix2gan.x", known) == {"pix2gan.y", "pix2gan.pkg.z", "pix2gan.pkg"}


def test_no_import_circles_and_imports_go_one_way():
    """docs/architecture.md: no circle between modules, counting imports inside functions (which the import test
    below cannot see), and a module imports only its own part or parts of lower layers."""
    graph = import_graph()
    assert {"pix2gan.config", "pix2gan.options", "pix2gan.config.files", "pix2gan_cli.app"} <= set(graph)
    assert graph["pix2gan_cli.common"] >= {"pix2gan.runs", "pix2gan.config.files"}  # (imported inside functions)
    assert import_circles(graph) == []
    rank = {part: level for level, parts in enumerate(LAYERS) for part in parts}
    assert {_part(m) for m in graph} <= set(rank), "a new part of the code: give it its layer in LAYERS and the docs"
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                    if _part(a) != _part(b) and rank[_part(b)] >= rank[_part(a)])  # fmt: skip
    assert upward == []


_FRESH_IMPORTS = """
import importlib, sys
import numpy, torch, nibabel, rich  # third-party packages load once; every pix2gan module is imported afresh
failures = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "pix2gan" or m.startswith(("pix2gan.", "pix2gan_cli"))]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failures.append(f"{name}: {type(exc).__name__}: {exc}")
print("\\n".join(failures))
sys.exit(1 if failures else 0)
"""


def test_every_module_imports_on_its_own():
    """Each module imported first, with no other pix2gan module loaded: a cycle fails whichever module enters it first."""
    done = subprocess.run([sys.executable, "-c", _FRESH_IMPORTS, *MODULES, "pix2gan_cli.app"], capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert {"pix2gan.nets.registry", "pix2gan.tasks.paired", "pix2gan.train.loop", "pix2gan.infer.translate"} <= set(MODULES)


def test_a_checkpoint_written_before_the_restructuring_still_translates(tmp_path):
    """tests/data holds a checkpoint and a translation made by commit 3a50455 (see tests/data/README.md)."""
    ckpt = load_checkpoint(DATA / "old_paired_checkpoint.pt")
    assert ckpt.mode == Mode.PAIRED and ckpt.config.model.generator == "unet"  # the default filled in
    out = tmp_path / "ct.nii.gz"
    result = CliRunner().invoke(app, ["translate", str(DATA / "old_source_t1.nii.gz"), "--checkpoint",
                                      str(DATA / "old_paired_checkpoint.pt"), "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    new, old, src = nib.load(out), nib.load(DATA / "old_expected_ct.nii.gz"), nib.load(DATA / "old_source_t1.nii.gz")
    assert new.shape == src.shape == (27, 31, 9)
    np.testing.assert_array_equal(new.affine, src.affine)
    for key in GEOMETRY_FIELDS:
        np.testing.assert_array_equal(new.header[key], src.header[key])
    # the same weights and arithmetic on the same machine: equal to float rounding across BLAS builds
    np.testing.assert_allclose(new.get_fdata(), old.get_fdata(), atol=0.05)


def test_translator_rebuilds_the_old_generator_through_the_registry():
    tr = Translator.from_checkpoint(DATA / "old_paired_checkpoint.pt", device="cpu")
    assert type(tr.generator).__name__ == "UNetGenerator" and tr.multiple == 2**tr.config.model.depth


@pytest.mark.parametrize("mode", ["noise", "class"])
def test_python_callers_get_the_cli_defaults(mode, digits_dir, tmp_path):
    """fit() of a config built in Python trains with the same settings as `pix2gan train --mode MODE`."""
    cli_run = tmp_path / "cli"
    result = CliRunner().invoke(app, ["train", "--mode", mode, "--data", str(digits_dir), "--run-dir", str(cli_run),
                                      "--epochs", "1", "--no-progress", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    py_run = tmp_path / "python"
    cfg = RunConfig.from_options(mode, data=str(digits_dir), epochs=1, device="cpu")
    fit(cfg, py_run, progress=False)
    cli_cfg, py_cfg = (json.loads(RunLayout(r).config.read_text()) for r in (cli_run, py_run))
    assert cli_cfg == py_cfg
    assert py_cfg["train"]["batch_size"] == 32 and py_cfg["gan"]["generator"] == "dcgan"  # not the paired defaults
    # a config built field by field gets the mode's defaults too
    plain = RunConfig(train=pix2gan.TrainConfig(mode=mode))
    assert (plain.train.epochs, plain.train.batch_size) == (200, 32)
    for key in ("generator", "discriminator"):
        a, b = (torch.load(RunLayout(r).latest, weights_only=True)[key] for r in (cli_run, py_run))
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_paired_recommendations_apply_unless_given():
    """`pix2gan train` (and RunConfig.from_options) use the benchmark's recommendations; a field-by-field config and
    noise/class runs keep pix2pix's / DCGAN's values, and a GAN term brings pix2pix's learning rate back."""
    from pix2gan.options import REGRESSION_LR, run_config

    cfg = run_config("paired")  # the conditional GAN after a regression warm-up (issue 18)
    assert (cfg.train.gan_loss, cfg.train.lr, cfg.train.lr_d, cfg.data.context, cfg.infer.tta) == (
        "lsgan", REGRESSION_LR, 2e-4, 2, True)
    assert (cfg.train.gan_warmup, cfg.train.lambda_l1, cfg.train.warmup_epochs, cfg.infer.realism) == (0.75, 10.0, 113, 1.0)
    assert cfg.train.epochs == 150 and RunConfig().train.epochs == 100
    # without the GAN term: the regression default before issue 18, with none of the warm-up's settings
    regression = run_config("paired", gan_loss="none")
    assert (regression.train.lr, regression.train.gan_warmup, regression.train.lambda_l1) == (REGRESSION_LR, 0.0, 100.0)
    gan = run_config("paired", gan_warmup=0)  # adversarial from the first step: pix2pix's learning rate and L1 weight
    assert (gan.train.lr, gan.train.lambda_l1, gan.data.context) == (2e-4, 100.0, 2)
    assert run_config("paired", epochs=2).train.gan_warmup == 0.0  # 2 epochs leave no room for a 3/4 warm-up
    assert run_config("paired", epochs=3).train.warmup_epochs == 2
    assert run_config("paired", gan_loss="none", lr=5e-4).train.lr == 5e-4
    pix2pix = run_config("paired", gan_loss="lsgan", gan_warmup=0, context=0, tta=False, epochs=100)
    assert pix2pix.to_dict() == {**RunConfig(data=pix2pix.data).to_dict()}  # the dataclasses' pix2pix defaults
    plain = RunConfig()
    assert (plain.train.gan_loss, plain.train.lr, plain.data.context, plain.infer.tta) == ("lsgan", 2e-4, 0, False)
    noise = run_config("noise")
    assert (noise.train.gan_loss, noise.train.lr, noise.data.context, noise.infer.tta) == ("lsgan", 2e-4, 0, False)
