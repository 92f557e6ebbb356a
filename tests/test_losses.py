import pytest
import torch
import torch.nn.functional as F

from pix2gan.config import GanLoss, ModelConfig, RunConfig, TrainConfig
from pix2gan.losses import GANLoss, L1Loss, gan_loss, l1_loss, mask_weighted_l1, ssim_loss
from pix2gan.nets import build_networks
from pix2gan.tasks.paired import PairedObjective
from pix2gan.train import train_step


ADVERSARIAL = [k for k in GanLoss if k != GanLoss.NONE]  # "none" is the absence of a GAN term


@pytest.mark.parametrize("kind", ADVERSARIAL)
def test_function_and_module_agree(kind):
    logits = torch.randn(3, 1, 6, 6)
    for real in (True, False):
        assert torch.equal(gan_loss(logits, real, kind), GANLoss(kind)(logits, real))


def test_lsgan_is_mse_to_labels():
    logits = torch.tensor([0.5, 2.0])
    assert gan_loss(logits, True, "lsgan").item() == pytest.approx(((0.5 - 1) ** 2 + (2 - 1) ** 2) / 2)
    assert gan_loss(logits, False, "lsgan").item() == pytest.approx((0.25 + 4) / 2)


def test_vanilla_is_bce_on_sigmoid():
    logits = torch.tensor([-1.0, 0.3, 4.0])
    expected = F.binary_cross_entropy(torch.sigmoid(logits), torch.ones(3))
    assert gan_loss(logits, True, "vanilla").item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("kind", ADVERSARIAL)
def test_losses_move_the_right_way(kind):
    """Real-labelled loss falls as logits rise; fake-labelled loss rises."""
    low, high = torch.full((4,), -0.5), torch.full((4,), 0.9)
    assert gan_loss(high, True, kind) < gan_loss(low, True, kind)
    assert gan_loss(high, False, kind) > gan_loss(low, False, kind)


def test_label_smoothing_changes_the_real_target():
    assert gan_loss(torch.full((2,), 0.9), True, "lsgan", real_label=0.9).item() == pytest.approx(0.0)


def test_l1_masked_and_module():
    a, b = torch.tensor([[1.0, 5.0], [2.0, 2.0]]), torch.zeros(2, 2)
    assert l1_loss(a, b).item() == pytest.approx(2.5)
    mask = torch.tensor([[True, False], [True, False]])
    assert L1Loss()(a, b, mask).item() == pytest.approx(1.5)
    with pytest.raises(ValueError, match="shapes differ"):
        l1_loss(a, torch.zeros(3))


def test_gan_loss_rejects_non_tensors():
    with pytest.raises(TypeError):
        gan_loss([0.0, 1.0], True)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ADVERSARIAL)
def test_paired_step_reduces_l1_and_leaves_d_frozen_for_g(kind):
    """The one D/G step over pix2pix's losses."""

    torch.manual_seed(0)
    cfg = RunConfig(model=ModelConfig(depth=3, base_filters=8, disc_filters=8, disc_layers=2), train=TrainConfig(gan_loss=kind))
    g, d = build_networks(cfg)
    opt_g = torch.optim.Adam(g.parameters(), 2e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    src = torch.rand(4, 1, 32, 32) * 2 - 1
    batch = {"src": src, "dst": -src}  # a learnable mapping
    first = train_step(PairedObjective(gan_kind=kind), batch, g, d, opt_g, opt_d)
    assert set(first) == {"loss_g", "loss_g_gan", "loss_g_l1", "loss_d", "loss_d_real", "loss_d_fake"}
    for _ in range(30):
        last = train_step(PairedObjective(gan_kind=kind), batch, g, d, opt_g, opt_d)
    assert last["loss_g_l1"] < 0.7 * first["loss_g_l1"]
    assert last["loss_g"] == pytest.approx(last["loss_g_gan"] + 100 * last["loss_g_l1"], rel=1e-5)
    assert not any(p.requires_grad for p in d.parameters())  # left frozen after the G phase


def test_discriminator_learns_to_separate():

    torch.manual_seed(0)
    cfg = RunConfig(model=ModelConfig(depth=3, base_filters=4, disc_filters=8, disc_layers=2))
    g, d = build_networks(cfg)
    opt_g = torch.optim.SGD(g.parameters(), lr=0.0)  # G frozen: only D learns
    opt_d = torch.optim.Adam(d.parameters(), 1e-3, betas=(0.5, 0.999))
    src = torch.rand(4, 1, 32, 32) * 2 - 1
    batch = {"src": src, "dst": torch.sign(src)}
    first = train_step(PairedObjective(), batch, g, d, opt_g, opt_d)
    for _ in range(40):
        last = train_step(PairedObjective(), batch, g, d, opt_g, opt_d)
    assert last["loss_d"] < 0.5 * first["loss_d"]


def test_diff_augment_is_differentiable_and_random():
    from pix2gan.losses import diff_augment

    torch.manual_seed(0)  # x below; every augmentation draws from its own seeded generator
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    y = diff_augment(x, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # gradients reach the generator through it
    a = diff_augment(x.detach(), generator=torch.Generator().manual_seed(1))
    b = diff_augment(x.detach(), generator=torch.Generator().manual_seed(1))
    c = diff_augment(x.detach(), generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # Cutout zeroes one axis-aligned square of side about half the image in every image; with translation=0 and
    # all-ones input (brightness/contrast keep it in [0.8, 1.2]) the zeros are exactly that square. Its centre
    # c = floor(u * 33) for u in [0, 1) lies in 0 .. 32 and it covers |i - c| <= 8 clipped to 0 .. 31, so each side
    # spans 17 pixels inside and only 8 at the far corner (c = 32: rows 24 .. 31) or 9 at the near one (c = 0):
    # between 64 / 1024 = 0.0625 and 289 / 1024 = 0.282 of the image. (The old bound 0.1 failed whenever a square
    # sat in a corner, about one run in four, because it drew from the unseeded global RNG.)
    ones = torch.ones(64, 1, 32, 32)
    holes = diff_augment(ones, translation=0.0, generator=torch.Generator().manual_seed(3))[:, 0] == 0
    sides = []
    for hole in holes:
        rows, cols = hole.any(1).nonzero()[:, 0], hole.any(0).nonzero()[:, 0]
        assert len(rows) and len(cols)  # every image gets its cutout
        assert rows.tolist() == list(range(rows[0], rows[-1] + 1))  # one contiguous block of rows ...
        assert cols.tolist() == list(range(cols[0], cols[-1] + 1))  # ... and of columns
        assert hole.sum() == len(rows) * len(cols)  # the block is filled: a rectangle, nothing else zeroed
        assert 8 <= len(rows) <= 17 and 8 <= len(cols) <= 17
        sides.append(len(rows))
    assert 17 in sides  # the unclipped square occurs (64 draws)
    zeros = holes.flatten(1).float().mean(1)
    assert torch.all(zeros >= 64 / 1024) and torch.all(zeros <= 289 / 1024)


def test_hinge_generator_loss_is_negative_mean():
    logits = torch.tensor([1.0, -3.0])
    assert gan_loss(logits, True, "hinge", for_discriminator=False).item() == pytest.approx(1.0)
    assert gan_loss(logits, False, "hinge").item() == pytest.approx((2.0 + 0.0) / 2)


def test_mask_weighted_l1_against_direct_weights():
    torch.manual_seed(0)
    pred, target = torch.randn(2, 1, 6, 7), torch.randn(2, 1, 6, 7)
    mask = torch.rand(2, 1, 6, 7) > 0.4
    w = torch.where(mask, 0.95, 0.05)
    expected = (w * (pred - target).abs()).sum() / w.sum()
    assert mask_weighted_l1(pred, target, mask, 0.95).item() == pytest.approx(expected.item(), rel=1e-6)
    assert mask_weighted_l1(pred, target, mask, 0.5).item() == pytest.approx(l1_loss(pred, target).item(), rel=1e-6)
    # weight 1: only the mask counts, as the masked L1
    assert mask_weighted_l1(pred, target, mask, 1.0).item() == pytest.approx(l1_loss(pred, target, mask).item(), rel=1e-6)


def test_ssim_loss_zero_for_equal_images_and_grows_with_noise():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 24, 24) * 2 - 1
    losses = [ssim_loss(x + s * torch.randn_like(x), x).item() for s in (0.0, 0.05, 0.3)]
    assert losses[0] == pytest.approx(0.0, abs=1e-6)
    assert losses[0] < losses[1] < losses[2] <= 1.0


def test_gan_loss_none_is_not_a_loss():
    with pytest.raises(ValueError, match="no adversarial term"):
        gan_loss(torch.zeros(2), True, "none")


def _tiny(**train):
    torch.manual_seed(0)
    cfg = RunConfig(model=ModelConfig(depth=3, base_filters=8, disc_filters=8, disc_layers=2), train=TrainConfig(**train))
    g, d = build_networks(cfg)
    return g, d, torch.optim.Adam(g.parameters(), 2e-3, betas=(0.5, 0.999)), torch.optim.Adam(d.parameters(), 2e-4)


def test_no_gan_trains_g_by_regression_and_never_touches_d():
    g, d, opt_g, opt_d = _tiny(gan_loss="none")
    d_before = [p.detach().clone() for p in d.parameters()]
    src = torch.rand(4, 1, 32, 32) * 2 - 1
    batch = {"src": src, "dst": -src}
    objective = PairedObjective(gan_kind=GanLoss.NONE)
    first = train_step(objective, batch, g, d, opt_g, opt_d)
    assert set(first) == {"loss_g", "loss_g_l1"}
    for _ in range(30):
        last = train_step(objective, batch, g, d, opt_g, opt_d)
    assert last["loss_g_l1"] < 0.7 * first["loss_g_l1"]
    assert last["loss_g"] == pytest.approx(100 * last["loss_g_l1"], rel=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(d_before, d.parameters(), strict=True))


def test_mask_weight_and_ssim_terms_move_the_right_way():
    """On a tiny overfit set every term falls, and the weighted L1 falls faster inside the mask than outside."""
    g, d, opt_g, opt_d = _tiny(gan_loss="lsgan")
    torch.manual_seed(1)
    src = torch.rand(4, 1, 32, 32) * 2 - 1
    mask = torch.zeros(4, 1, 32, 32, dtype=torch.bool)
    mask[..., 8:24, 8:24] = True
    batch = {"src": src, "dst": -src, "mask": mask}
    objective = PairedObjective(mask_weight=0.95, lambda_ssim=5.0)
    first = train_step(objective, batch, g, d, opt_g, opt_d)
    assert {"loss_g_gan", "loss_g_l1", "loss_g_ssim"} <= set(first)
    for _ in range(40):
        last = train_step(objective, batch, g, d, opt_g, opt_d)
    assert last["loss_g_l1"] < 0.7 * first["loss_g_l1"] and last["loss_g_ssim"] < first["loss_g_ssim"]
    assert last["loss_g"] == pytest.approx(last["loss_g_gan"] + 100 * last["loss_g_l1"] + 5 * last["loss_g_ssim"], rel=1e-5)
    with torch.no_grad():
        err = (g(src) + src).abs()
    assert err[mask].mean() < err[~mask].mean()  # the body's voxels were learned first


def test_context_objective_feeds_g_the_stack_and_d_the_centre_slice():
    cfg = RunConfig(data=__import__("pix2gan.config", fromlist=["DataConfig"]).DataConfig(context=2),
                    model=ModelConfig(depth=3, base_filters=8, disc_filters=8, disc_layers=2))
    g, d = build_networks(cfg)
    assert g(torch.zeros(1, 5, 32, 32)).shape == (1, 1, 32, 32)  # 2K + 1 = 5 input channels
    seen = []
    d.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    src = torch.rand(2, 5, 32, 32)
    batch = {"src": src, "dst": torch.rand(2, 1, 32, 32)}
    train_step(PairedObjective(context=2), batch, g, d, torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters()))
    assert all(x.shape[1] == 2 and torch.equal(x[:, :1], src[:, 2:3]) for x in seen)
