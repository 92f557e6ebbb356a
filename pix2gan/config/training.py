"""The optimisation section of a run (``train``) and how its paired model is best used at inference (``infer``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pix2gan.config.base import FUSIONS, GanLoss, Mode, _check_enum, _FromDict

__all__ = ["MODE_DEFAULTS", "TrainConfig", "InferConfig", "warmup_epochs_of"]


# defaults that differ between modes: pix2pix's (demo-sized crops) for paired runs, DCGAN-sized for GANs
MODE_DEFAULTS: dict[Mode, dict[str, int]] = {
    Mode.PAIRED: {"epochs": 100, "batch_size": 4, "image_size": 64},
    Mode.NOISE: {"epochs": 200, "batch_size": 32, "image_size": 32},
    Mode.CLASS: {"epochs": 200, "batch_size": 32, "image_size": 32},
    # CycleGAN's batch 1; 40 epochs: ~360 steps each on the bundled phantoms (10 training subjects of 36 slices), at
    # ~0.12 s a step on 2 CPU cores (ResNet-9, 16 filters, 64-pixel crops): ~30 minutes
    Mode.UNPAIRED: {"epochs": 40, "batch_size": 1, "image_size": 64},
}


def warmup_epochs_of(fraction: float, epochs: int) -> int:
    """The warm-up's epochs of ``--gan-warmup fraction`` over ``epochs``: to the nearest epoch, halves rounded up.

    Example:
        >>> [warmup_epochs_of(f, e) for f, e in ((0.3, 100), (0.5, 3), (0.75, 2), (0.0, 4))]
        [30, 2, 2, 0]
    """
    return math.floor(fraction * epochs + 0.5)


@dataclass
class TrainConfig(_FromDict):
    """Optimisation settings (pix2pix defaults) and run bookkeeping.

    ``epochs``, ``batch_size`` and ``image_size`` left at None take the defaults of the mode (:data:`MODE_DEFAULTS`):
    pix2pix's for paired runs, DCGAN-sized ones for noise and class runs.

    Args:
        mode: training mode (``paired``, ``noise``, ``class`` or ``unpaired``).
        epochs: epochs in total; the learning rate decays linearly to 0 over the second half. With ``minutes`` and
            no ``epochs`` the loop settles the count during epoch 1 and records it here (in ``config.json``).
        minutes: train for about this wall-clock time (``train --minutes``): the loop measures its own first epoch
            and settles ``epochs = max(1, round(60 x minutes / seconds per epoch))`` once, before any learning rate
            depends on it (:mod:`pix2gan.train.budget`); the run is then the one ``--epochs`` that count would train.
            Kept for the record once settled; ``epochs`` given with it is the settled count (a run's config.json).
        batch_size: slices (images) per step.
        image_size: paired: side of the square random crop fed to the networks (a multiple of the generator's padding
            multiple); noise/class: mirrors ``GanModelConfig.image_size``.
        lr: Adam learning rate for both networks (2e-4).
        betas: Adam betas ((0.5, 0.999)).
        lambda_l1: weight of the L1 reconstruction term (100).
        mask_weight: paired: weight of the body-mask voxels in the L1 term (e.g. 0.95; the voxels outside get
            1 - mask_weight); None: every voxel counts the same.
        lambda_ssim: paired: weight of an SSIM term (kornia's ``ssim_loss``, (1 - SSIM) / 2, 11-pixel window); 0: off.
        gan_loss: ``lsgan``, ``vanilla``, ``hinge``, or ``none`` (paired only: no discriminator, pure regression).
        gan_warmup: paired: the fraction F of the epochs trained by regression alone before the adversarial term
            switches on (0: adversarial from the first step). The first :attr:`warmup_epochs` = round(F x epochs)
            epochs (halves rounded up) make no discriminator update; the discriminator, its optimiser and its
            learning-rate schedule (sized for the remaining epochs) start with the next one. The generator at the
            switch is kept in every later checkpoint (``generator_regression``): ``translate --realism`` blends it
            with the adversarial one. F in [0, 1), and at least one epoch on each side of the switch. The
            generator's learning-rate schedule starts again at the switch (pretrain, then fine-tune, as in ESRGAN):
            constant, then linear decay to 0 over the warm-up (so the snapshot is a finished regression), and the
            same over the adversarial epochs at ``lr_gan``. With ``minutes`` F is the share of the time budget the
            warm-up gets, and the loop settles each phase's epochs from the time of its own first epoch.
        gan_warmup_epochs: the warm-up's epochs when set (a ``--minutes`` run records what it settled here, with
            ``gan_warmup`` kept for the record); None: round(F x epochs).
        lr_gan: the generator's learning rate after a warm-up's switch (None: ``lr``, the warm-up's).
        lambda_cycle: unpaired: weight of each direction's cycle-consistency L1 (CycleGAN: 10).
        lambda_identity: unpaired: weight of the identity L1s as a fraction of ``lambda_cycle`` (0: off); None:
            CycleGAN's 0.5 where an identity applies (the same channels on both sides, no ``context``), else off.
        pool_size: unpaired: generated images kept in each discriminator's history pool (CycleGAN: 50; 0: none).
        init_gain: std of the N(0, gain) weight initialisation (0.02).
        seed: seed of weights, crops and batch order.
        flip: random left-right flips of training pairs.
        num_workers: DataLoader worker processes (0 = main process; the slice cache makes fetching cheap).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda[:N]``.
        threads: torch intra-op threads on CPU (0 = torch's default).
        panel_slices: validation slices drawn in the per-epoch PNG panel.
        d_steps: discriminator updates per generator update (noise and class modes).
        label_smoothing: one-sided label smoothing: real label = 1 - label_smoothing (noise and class modes).
        augment: differentiable augmentation of the discriminator's inputs (noise and class modes; DiffAugment).
        lr_d: discriminator learning rate when it should differ from ``lr`` (two time-scale update rule).
        checkpoint_every: also save a checkpoint every this many steps (0 = only at the end of each epoch).
        checkpoint_minutes: also save one when this many minutes passed since the last save (0 = never).
        keep_last: step checkpoints to keep besides ``latest`` and ``best``.
        max_nonfinite: stop after this many steps in a row with a non-finite loss (each one is skipped).
        precision: ``auto`` (bf16 on GPUs that have it, else fp32), ``fp32``, ``bf16`` or ``fp16`` (with a gradient
            scaler): the autocast dtype of the forward passes; weights and optimiser states stay fp32.
        channels_last: networks and batches in channels-last memory format (faster convolutions on GPUs).
        compile: ``torch.compile`` the networks for training.
        device_crop: paired random crops and flips on the device (kornia) instead of in the data set; None = on CUDA.
        tensorboard: also write TensorBoard event files to ``RUN/tb/`` (losses, learning rates, validation figures,
            the per-epoch PNG); needs the optional ``tensorboard`` package (``pip install pix2gan[tensorboard]``).
    """

    mode: Mode = Mode.PAIRED
    epochs: int | None = None
    minutes: float | None = None
    batch_size: int | None = None
    image_size: int | None = None
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lambda_l1: float = 100.0
    mask_weight: float | None = None
    lambda_ssim: float = 0.0
    gan_loss: GanLoss = GanLoss.LSGAN
    gan_warmup: float = 0.0
    gan_warmup_epochs: int | None = None
    lr_gan: float | None = None
    lambda_cycle: float = 10.0
    lambda_identity: float | None = None
    pool_size: int = 50
    init_gain: float = 0.02
    seed: int = 0
    flip: bool = True
    num_workers: int = 0
    device: str = "auto"
    threads: int = 0
    panel_slices: int = 3
    d_steps: int = 1
    label_smoothing: float = 0.0
    augment: bool = True
    lr_d: float | None = None
    checkpoint_every: int = 0
    checkpoint_minutes: float = 30.0
    keep_last: int = 3
    max_nonfinite: int = 20
    precision: str = "auto"
    channels_last: bool = False
    compile: bool = False
    device_crop: bool | None = None
    tensorboard: bool = False

    def __post_init__(self) -> None:
        self.mode = _check_enum("TrainConfig", "mode", self.mode, Mode)  # type: ignore[assignment]
        for name, value in MODE_DEFAULTS[self.mode].items():
            if getattr(self, name) is None and not (name == "epochs" and self.minutes is not None):
                setattr(self, name, value)
        self.gan_loss = _check_enum("TrainConfig", "gan_loss", self.gan_loss, GanLoss)  # type: ignore[assignment]
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        if self.minutes is not None and not self.minutes > 0:
            raise ValueError(f"--minutes must be > 0, got {self.minutes}")
        for name in ("epochs", "batch_size", "image_size")[self.epochs is None :]:  # (epochs: None until settled)
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or (self.lr_d is not None and self.lr_d <= 0) or (self.lr_gan is not None and self.lr_gan <= 0):
            raise ValueError(f"TrainConfig.lr, lr_d and lr_gan must be > 0, got {self.lr}, {self.lr_d} and {self.lr_gan}")
        if self.lambda_l1 < 0 or self.lambda_ssim < 0:
            raise ValueError(f"TrainConfig.lambda_l1 and lambda_ssim must be >= 0, got {self.lambda_l1}, {self.lambda_ssim}")
        if self.mask_weight is not None and not 0.0 < self.mask_weight <= 1.0:
            raise ValueError(f"TrainConfig.mask_weight must be in (0, 1], got {self.mask_weight}")
        if self.gan_loss == GanLoss.NONE and self.mode != Mode.PAIRED:
            raise ValueError("--gan-loss none is for paired runs (noise, class and unpaired modes are adversarial by "
                             "nature)")  # fmt: skip
        if self.lambda_cycle < 0 or (self.lambda_identity or 0) < 0 or self.pool_size < 0:
            raise ValueError(f"TrainConfig.lambda_cycle, lambda_identity and pool_size must be >= 0, got "
                             f"{self.lambda_cycle}, {self.lambda_identity} and {self.pool_size}")  # fmt: skip
        self._check_warmup()
        if self.num_workers < 0 or self.threads < 0:
            raise ValueError("TrainConfig.num_workers and threads must be >= 0")
        if self.d_steps < 1:
            raise ValueError(f"TrainConfig.d_steps must be >= 1, got {self.d_steps}")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError(f"TrainConfig.label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if self.checkpoint_every < 0 or self.checkpoint_minutes < 0:
            raise ValueError("TrainConfig.checkpoint_every and checkpoint_minutes must be >= 0")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"TrainConfig.precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        if self.keep_last < 1 or self.max_nonfinite < 1:
            raise ValueError(f"TrainConfig.keep_last and max_nonfinite must be >= 1, got {self.keep_last}, {self.max_nonfinite}")

    @property
    def warmup_epochs(self) -> int:
        """Epochs trained by regression alone before the adversarial term switches on: :attr:`gan_warmup_epochs`
        when set, else F x epochs to the nearest epoch, halves rounded up (0 without warm-up).

        Example:
            >>> pairs = ((100, 0.3), (3, 0.5), (5, 0.5), (4, 0.0))
            >>> [TrainConfig(epochs=e, gan_warmup=f).warmup_epochs for e, f in pairs]
            [30, 2, 3, 0]
            >>> TrainConfig(epochs=10, gan_warmup=0.5, gan_warmup_epochs=4).warmup_epochs
            4
        """
        if self.gan_warmup_epochs is not None:
            return int(self.gan_warmup_epochs)
        return warmup_epochs_of(self.gan_warmup, int(self.epochs))  # type: ignore[arg-type]

    @property
    def least_epochs(self) -> int:
        """The fewest epochs this configuration can train: 1, or with ``gan_warmup`` the fewest that leave a warm-up
        and an adversarial epoch (what ``--minutes`` settles on when even that is over the budget).

        Example:
            >>> [TrainConfig(gan_warmup=f).least_epochs for f in (0.0, 0.5, 0.1, 0.9)]
            [1, 2, 5, 6]
        """
        if not self.gan_warmup:
            return 1
        epochs = 2
        while not 1 <= warmup_epochs_of(self.gan_warmup, epochs) < epochs:
            epochs += 1
        return epochs

    def _check_warmup(self) -> None:
        """``gan_warmup``: a fraction in [0, 1) of a paired adversarial run, leaving an epoch on each side."""
        f = self.gan_warmup
        if not 0.0 <= f < 1.0:
            raise ValueError(f"--gan-warmup must be in [0, 1) (a fraction of the epochs), got {f}")
        if f == 0.0:
            if self.lr_gan is not None or self.gan_warmup_epochs is not None:
                raise ValueError("--lr-gan is the generator's learning rate after a --gan-warmup; without a warm-up "
                                 "the generator has one learning rate, --lr")  # fmt: skip
            return
        if self.mode != Mode.PAIRED:
            raise ValueError("--gan-warmup is for paired runs (noise, class and unpaired modes have no regression term)")
        if self.gan_loss == GanLoss.NONE:
            raise ValueError("--gan-warmup needs an adversarial term to switch on; --gan-loss is none")
        if self.gan_warmup_epochs is not None and self.gan_warmup_epochs < 1:
            raise ValueError(f"TrainConfig.gan_warmup_epochs must be >= 1, got {self.gan_warmup_epochs}")
        if self.epochs is None:  # --minutes settles a count that leaves an epoch on each side (least_epochs)
            return
        if not 1 <= self.warmup_epochs < int(self.epochs):  # type: ignore[arg-type]
            raise ValueError(f"--gan-warmup {f:g} of {self.epochs} epochs gives {self.warmup_epochs} warm-up epochs; "
                             f"it needs at least one regression and one adversarial epoch")  # fmt: skip


@dataclass
class InferConfig(_FromDict):
    """How a paired model is best used at inference, stored with it so ``translate`` needs no flags.

    Args:
        fusion: how predictions of several planes, flips and ensemble members are combined: ``mean`` or ``median``
            (the median holds one volume per prediction in memory).
        tta: test-time augmentation: also predict the left-right mirrored volume and average (2x the time).
        realism: the generator of a run trained with ``gan_warmup``, weight by weight: (1 - A) x the regression
            snapshot + A x the adversarial generator (0: regression, 1: adversarial); a model holding one generator
            only is used as it is.
    """

    fusion: str = "mean"
    tta: bool = False
    realism: float = 1.0

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"InferConfig.fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        if not 0.0 <= self.realism <= 1.0:
            raise ValueError(f"--realism must be in [0, 1], got {self.realism}")
