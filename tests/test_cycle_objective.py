"""CycleGAN's objective, networks and history pool: every term against numbers worked out by hand."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from pix2gan.checkpoint import load_checkpoint, save_checkpoint
from pix2gan.config import ModelConfig, Norm, RunConfig, TrainConfig
from pix2gan.config.data import DataConfig
from pix2gan.data.intensity import intensity_maps
from pix2gan.errors import InputError
from pix2gan.nets.cycle import CycleDiscriminators, CycleGenerators
from pix2gan.nets.registry import build_cycle_generators, build_cycle_networks
from pix2gan.tasks.paired import PairedObjective
from pix2gan.tasks.unpaired_objective import CycleImages, CycleObjective, identity_refusal
from pix2gan.train.optim import build_optimizers, build_schedulers
from pix2gan.tasks.pool import ImagePool
from pix2gan.train.state import LoopState, Trainables, checkpoint_payload, restore
from pix2gan.train.step import train_step


def affine(weights: list[float], bias: float, out_channels: int = 1) -> nn.Conv2d:
    """A 1x1 convolution: out = sum_i weights[i] * x_i + bias (the same for every output channel)."""
    conv = nn.Conv2d(len(weights), out_channels, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(weights).view(1, -1, 1, 1).expand_as(conv.weight))
        conv.bias.fill_(bias)
    return conv


def linear_nets(ga=([2.0], 0.1), gb=([0.5], -0.2), ca: int = 1) -> tuple[CycleGenerators, CycleDiscriminators]:
    """G_ab: x -> 2x + 0.1, G_ba: x -> 0.5x - 0.2, D_a: x -> 2x (per channel mean), D_b: x -> x."""
    g = CycleGenerators(affine(*ga), affine(*gb, out_channels=ca))
    d = CycleDiscriminators(affine([2.0 / ca] * ca, 0.0), affine([1.0], 0.0))
    return g, d


def constant(value: float | list[float], b: int = 2, s: int = 4) -> torch.Tensor:
    values = value if isinstance(value, list) else [value]
    return torch.tensor(values).view(1, -1, 1, 1).expand(b, -1, s, s).clone()


# a = 0.5, b = -0.25 everywhere; by hand:
#   fake_b = G_ab(a) = 1.1        rec_a = G_ba(1.1) = 0.35       cycle a = |0.35 - 0.5| = 0.15
#   fake_a = G_ba(b) = -0.325     rec_b = G_ab(-0.325) = -0.55   cycle b = |-0.55 + 0.25| = 0.3
#   idt_b = G_ab(b) = -0.4 (|. - b| = 0.15)                      idt_a = G_ba(a) = 0.05 (|. - a| = 0.45)
#   G's LSGAN terms: (D_b(1.1) - 1)^2 = 0.01, (D_a(-0.325) - 1)^2 = (-0.65 - 1)^2 = 2.7225
#   D_b: ((b - 1)^2 + 1.1^2) / 2 = (1.5625 + 1.21) / 2 = 1.38625;  D_a: ((1 - 1)^2 + (-0.65)^2) / 2 = 0.21125
BATCH = {"src": constant(0.5), "dst": constant(-0.25)}


def test_every_term_by_hand():
    g, d = linear_nets()
    obj = CycleObjective()
    fake = obj.generate(BATCH, g)
    for name, value in [("fake_b", 1.1), ("rec_a", 0.35), ("fake_a", -0.325), ("rec_b", -0.55), ("idt_b", -0.4),
                        ("idt_a", 0.05)]:  # fmt: skip
        assert torch.allclose(getattr(fake, name), torch.full((2, 1, 4, 4), value)), name
    g_terms = obj.g_losses(BATCH, d, fake)
    assert list(g_terms) == ["loss_g", "loss_g_gan_ab", "loss_g_gan_ba", "loss_g_cycle_a", "loss_g_cycle_b",
                             "loss_g_idt_a", "loss_g_idt_b"]  # fmt: skip
    expect = {"loss_g_gan_ab": 0.01, "loss_g_gan_ba": 2.7225, "loss_g_cycle_a": 0.15, "loss_g_cycle_b": 0.3,
              "loss_g_idt_a": 0.45, "loss_g_idt_b": 0.15}  # fmt: skip
    expect["loss_g"] = 0.01 + 2.7225 + 10 * (0.15 + 0.3) + 0.5 * 10 * (0.45 + 0.15)  # 10.2325
    assert {k: v.item() for k, v in g_terms.items()} == pytest.approx(expect, rel=1e-6)
    d_terms = obj.d_losses(BATCH, d, fake.detach())  # the pools are not full: they give back the new images
    assert list(d_terms) == ["loss_d", "loss_d_a", "loss_d_b"]
    want = {"loss_d_b": 1.38625, "loss_d_a": 0.21125, "loss_d": 1.38625 + 0.21125}  # each halved
    assert {k: v.item() for k, v in d_terms.items()} == pytest.approx(want, rel=1e-6)
    assert list(g_terms) + list(d_terms) == list(obj.loss_names)


def test_weights_and_gan_kind():
    g, d = linear_nets()
    obj = CycleObjective(lambda_cycle=2.0, lambda_identity=0.25, gan_kind="vanilla")
    terms = obj.g_losses(BATCH, d, obj.generate(BATCH, g))
    bce = nn.functional.softplus  # -log sigmoid(x) = softplus(-x)
    gan = bce(torch.tensor(-1.1)).item() + bce(torch.tensor(0.65)).item()
    assert terms["loss_g_gan_ab"].item() + terms["loss_g_gan_ba"].item() == pytest.approx(gan, rel=1e-6)
    assert terms["loss_g"].item() == pytest.approx(gan + 2.0 * 0.45 + 0.25 * 2.0 * 0.6, rel=1e-6)
    with pytest.raises(ValueError, match="none"):
        CycleObjective(gan_kind="none")


def test_identity_off_when_channels_differ():
    """RGB sources, grey targets: no identity term; G_ba gives 3 channels and D_a judges 3."""
    message = identity_refusal(3, 1)
    assert message is not None and "\n" not in message and "3 channels" in message
    g, d = linear_nets(ga=([1.0, 1.0, 1.0], 0.0), gb=([1.0], 0.0), ca=3)
    obj = CycleObjective(src_channels=3, dst_channels=1)
    assert not obj.identity and "loss_g_idt_a" not in obj.loss_names
    batch = {"src": constant([0.1, 0.2, 0.3]), "dst": constant(0.4)}
    fake = obj.generate(batch, g)
    assert fake.idt_a is None and fake.idt_b is None and fake.fake_a.shape == (2, 3, 4, 4)
    terms = obj.g_losses(batch, d, fake)
    # fake_b = 0.6, rec_a = 0.6 per channel: cycle a = mean(|0.5|, |0.4|, |0.3|) = 0.4; fake_a = 0.4 (x3),
    # rec_b = 1.2, cycle b = 0.8; G's GAN: (0.6 - 1)^2 + (mean 2/3 * 3 * 0.4 - 1)^2 = 0.16 + 0.04
    assert terms["loss_g"].item() == pytest.approx(0.16 + 0.04 + 10 * (0.4 + 0.8), rel=1e-6)
    assert "loss_g_idt_a" not in terms
    with pytest.raises(ValueError, match=r"src \(B, 3, S, S\)"):
        obj.generate({"src": constant(0.1), "dst": constant(0.4)}, g)


def test_context_without_target_stacks():
    """K = 1: G_ab takes 3 slices; G_ba's one slice stands in for its neighbours in the cycle b -> a -> b; D_a and the
    cycle a judge the centre slice; the identity is off."""
    assert identity_refusal(1, 1, context=1) is not None
    g = CycleGenerators(affine([1.0, 2.0, 3.0], 0.0), affine([0.5], 0.0))
    d = CycleDiscriminators(affine([1.0], 0.0), affine([1.0], 0.0))
    obj = CycleObjective(context=1)
    assert not obj.identity
    batch = {"src": constant([9.0, 0.5, -9.0]), "dst": constant(0.2)}
    fake = obj.generate(batch, g)
    # fake_b = 9 + 1 - 27 = -17, rec_a = -8.5 vs the centre 0.5; fake_a = 0.1, rec_b = (1 + 2 + 3) * 0.1 = 0.6
    assert torch.allclose(fake.fake_b, torch.tensor(-17.0)) and torch.allclose(fake.rec_b, torch.tensor(0.6))
    terms = obj.g_losses(batch, d, fake)
    assert terms["loss_g_cycle_a"].item() == pytest.approx(9.0) and terms["loss_g_cycle_b"].item() == pytest.approx(0.4)
    d_terms = obj.d_losses(batch, d, fake.detach())  # D_a: ((0.5 - 1)^2 + 0.1^2) / 2
    assert d_terms["loss_d_a"].item() == pytest.approx((0.25 + 0.01) / 2, rel=1e-6)


def test_context_with_target_stacks():
    """K = 1 with the target's stacks: G_ba runs on each target slice, the identities apply."""
    g = CycleGenerators(affine([1.0, 2.0, 3.0], 0.0), affine([0.5], 0.0))
    d = CycleDiscriminators(affine([1.0], 0.0), affine([1.0], 0.0))
    obj = CycleObjective(context=1, dst_stack=True)
    assert obj.identity and identity_refusal(1, 1, context=1, dst_stack=True) is None
    batch = {"src": constant([9.0, 0.5, -9.0]), "dst": constant([0.1, 0.2, 0.4])}
    fake = obj.generate(batch, g)
    # fake_a stack = (0.05, 0.1, 0.2): centre 0.1; rec_b = 0.05 + 0.2 + 0.6 = 0.85 vs the centre 0.2
    # idt_b = G_ab(b stack) = 0.1 + 0.4 + 1.2 = 1.7 vs 0.2; idt_a = G_ba(0.5) = 0.25 vs 0.5
    for name, value in [("fake_a", 0.1), ("rec_b", 0.85), ("idt_b", 1.7), ("idt_a", 0.25)]:
        assert torch.allclose(getattr(fake, name), torch.full((2, 1, 4, 4), value)), name
    terms = obj.g_losses(batch, d, fake)
    assert terms["loss_g_idt_b"].item() == pytest.approx(1.5) and terms["loss_g_idt_a"].item() == pytest.approx(0.25)
    d_terms = obj.d_losses(batch, d, fake.detach())  # D_b judges the centre 0.2: ((0.2 - 1)^2 + 17^2) / 2
    assert d_terms["loss_d_b"].item() == pytest.approx((0.64 + 289.0) / 2, rel=1e-6)


def test_d_phase_sees_the_pool():
    """A full pool hands D old images: D's loss is computed on what the pool returned."""
    g, d = linear_nets()
    obj = CycleObjective(pool_size=2, seed=1)
    obj.pool_b.images = [torch.full((1, 4, 4), 3.0), torch.full((1, 4, 4), 3.0)]  # full of old fakes of value 3
    obj.pool_a.images = [torch.full((1, 4, 4), -0.325)] * 2  # the same as the new ones: D_a's loss as by hand
    batch = {"src": constant(0.5, b=64), "dst": constant(-0.25, b=64)}
    loss = obj.d_losses(batch, d, obj.generate(batch, g).detach())["loss_d_b"].item()
    stored = torch.stack(obj.pool_b.images)
    assert torch.allclose(stored, torch.tensor(1.1))  # both old images were swapped out for new ones
    # the fakes D_b judged: 2 old images of 3.0 and 62 new ones of 1.1 (64 draws took both slots at least once; a
    # slot taken again gives back the 1.1 stored the first time): D_b's loss = ((b - 1)^2 + mean(fake^2)) / 2
    old = (2 * (loss - 0.5 * 1.5625) - 1.21) / (9.0 - 1.21) * 64
    assert old == pytest.approx(2.0, abs=1e-3)


def test_structure_detaches():
    g, _ = linear_nets()
    fake = CycleObjective().generate(BATCH, g)
    assert fake.fake_b.requires_grad
    detached = fake.detach()
    assert isinstance(detached, CycleImages)
    assert not any(t.requires_grad for t in (detached.fake_b, detached.fake_a, detached.rec_a, detached.rec_b))
    assert torch.equal(detached.idt_a, fake.idt_a)


# ---------------------------------------------------------------- the pool


def filled(capacity: int, seed: int = 0) -> ImagePool:
    pool = ImagePool(capacity, seed)
    pool(torch.arange(capacity, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous())
    return pool


def test_pool_fills_then_swaps_half_the_time():
    pool = ImagePool(4, seed=0)
    first = torch.randn(3, 1, 2, 2)
    assert torch.equal(pool(first), first) and len(pool) == 3  # not full: stored and returned as they are
    pool = filled(10, seed=5)
    returned_old = 0
    picked = torch.zeros(10)
    n = 4000
    for i in range(n):
        before = [im.clone() for im in pool.images]
        new = torch.full((1, 1, 2, 2), 100.0 + i)
        out = pool(new)
        if torch.equal(out, new):  # the new image back, the pool unchanged
            assert all(torch.equal(x, y) for x, y in zip(before, pool.images))
        else:  # an old image back, the new one stored in its place, the others unchanged
            k = next(j for j, x in enumerate(before) if torch.equal(x, out[0]))
            assert torch.equal(pool.images[k], new[0])
            assert all(torch.equal(x, y) for j, (x, y) in enumerate(zip(before, pool.images)) if j != k)
            returned_old += 1
            picked[k] += 1
    assert abs(returned_old / n - 0.5) < 4 * (0.25 / n) ** 0.5  # within 4 standard deviations of one half
    expected = returned_old / 10  # the slot is chosen uniformly: each within 5 standard deviations of its share
    assert ((picked - expected).abs() < 5 * (expected * 0.9) ** 0.5).all()


def test_pool_exact_seeded_sequence():
    """The reference's algorithm with the same seeded draws, written out: per image, u ~ U(0, 1); u > 1/2: slot
    k ~ U{0..capacity-1} returned and replaced."""
    pool = filled(3, seed=7)
    gen = torch.Generator().manual_seed(7)
    mirror = [im.clone() for im in pool.images]
    batch = torch.arange(100, 112, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    out = pool(batch)
    want = []
    for image in batch:
        if float(torch.rand((), generator=gen)) > 0.5:
            k = int(torch.randint(3, (), generator=gen))
            want.append(mirror[k])
            mirror[k] = image
        else:
            want.append(image)
    assert torch.equal(out, torch.stack(want))
    assert all(torch.equal(x, y) for x, y in zip(pool.images, mirror))
    assert out[:, 0, 0, 0].tolist() != batch[:, 0, 0, 0].tolist()  # (this seed swaps some images)


def test_pool_capacity_zero_and_global_rng():
    pool = ImagePool(0, seed=0)
    x = torch.randn(4, 1, 2, 2)
    state = pool.generator.get_state()
    assert pool(x) is x and len(pool) == 0
    assert torch.equal(pool.generator.get_state(), state)  # nothing stored, nothing drawn
    full = filled(2)
    before = torch.get_rng_state()
    full(torch.ones(64, 1, 2, 2))
    assert torch.equal(torch.get_rng_state(), before)  # the pool draws from its own generator only
    assert not torch.equal(full.generator.get_state(), filled(2).generator.get_state())
    with pytest.raises(ValueError, match="capacity"):
        ImagePool(-1)


def test_pool_state_round_trip(tmp_path):
    pool = filled(5, seed=3)
    pool(torch.full((7, 1, 2, 2), 50.0))
    path = tmp_path / "pool.pt"
    torch.save(pool.state_dict(), path)
    state = torch.load(path, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values()) and state["rng"].dtype == torch.uint8
    twin = ImagePool(5, seed=999)
    twin.load_state_dict(state)
    for i in range(20):  # both continue with the same draws and the same images, bit for bit
        batch = torch.randn(3, 1, 2, 2)
        assert torch.equal(pool(batch), twin(batch)), i
    empty = ImagePool(5, seed=1)
    fresh = ImagePool(5, seed=2)
    fresh.load_state_dict(empty.state_dict())
    assert len(fresh) == 0 and torch.equal(fresh.generator.get_state(), empty.generator.get_state())
    with pytest.raises(ValueError, match="capacity 2"):
        ImagePool(2).load_state_dict(pool.state_dict())


# ---------------------------------------------------------------- the networks, the real step, checkpoints


def tiny_cfg(**data: object) -> RunConfig:
    return RunConfig(
        data=DataConfig(**data),  # type: ignore[arg-type]
        model=ModelConfig(generator="resnet9", norm=Norm.INSTANCE, dropout=False, base_filters=2, disc_filters=2,
                          disc_layers=2),  # fmt: skip
        train=TrainConfig(device="cpu", seed=0),
    )


def test_networks_channels_and_reference_sizes():
    g, d = build_cycle_networks(tiny_cfg(context=1))
    assert g.g_ab.config.in_channels == 3 and g.g_ab.config.out_channels == 1  # the source stack -> the target slice
    assert g.g_ba.config.in_channels == 1 and g.g_ba.config.out_channels == 1  # one slice -> the centre slice
    assert d.d_a.net[0].in_channels == 1 and d.d_b.net[0].in_channels == 1 and g.multiple == 4
    x = torch.randn(1, 1, 8, 8)
    assert torch.equal(g(x, reverse=True), g.g_ba(x)) and torch.equal(g.reversed()(x), g.g_ba(x))
    assert g.reversed().g_ab is g.g_ba and g.reversed().reversed().g_ab is g.g_ab  # a view: the same networks
    rgb = RunConfig(model=ModelConfig(generator="resnet9", norm=Norm.INSTANCE, dropout=False, base_filters=64,
                                      disc_filters=64, in_channels=3, out_channels=3))  # fmt: skip
    g, d = build_cycle_networks(rgb)
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    # the reference implementation's CycleGAN prints G 11.378 M and D 2.765 M parameters per network
    assert (count(g.g_ab), count(g.g_ba), count(d.d_a), count(d.d_b)) == (11_378_179, 11_378_179, 2_764_737, 2_764_737)
    assert set(build_cycle_generators(tiny_cfg(), init=False).state_dict()) == set(
        build_cycle_networks(tiny_cfg())[0].state_dict())
    with pytest.raises(ValueError, match="domain"):
        d(torch.zeros(1, 3, 32, 32), "c")


def extra() -> dict[str, str]:
    """The JSON strings a (paired-mode) checkpoint needs besides the payload's own (the intensity settings)."""
    src, dst = intensity_maps(DataConfig())
    return {"intensity": json.dumps({"src": src.to_dict(), "dst": dst.to_dict()})}


def setup_run(seed: int, pool_size: int = 2) -> tuple[Trainables, CycleObjective, dict[str, torch.Tensor]]:
    torch.manual_seed(seed)
    cfg = tiny_cfg()
    g, d = build_cycle_networks(cfg)
    opt_g, opt_d = build_optimizers(g, d, cfg.train)
    sched_g, sched_d = build_schedulers(opt_g, opt_d, 10)
    obj = CycleObjective(pool_size=pool_size, seed=11)
    parts = Trainables(g, d, opt_g, opt_d, sched_g, sched_d, objective=obj)
    gen = torch.Generator().manual_seed(0)
    batch = {k: torch.rand(2, 1, 16, 16, generator=gen) * 2 - 1 for k in ("src", "dst")}
    return parts, obj, batch


def step(parts: Trainables, obj: CycleObjective, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    losses = train_step(obj, batch, parts.generator, parts.discriminator, parts.opt_g, parts.opt_d)
    parts.sched_g.step()
    parts.sched_d.step()
    return losses


def test_one_real_train_step_updates_all_four_networks():
    parts, obj, batch = setup_run(0)
    nets = {"g_ab": parts.generator.g_ab, "g_ba": parts.generator.g_ba, "d_a": parts.discriminator.d_a,
            "d_b": parts.discriminator.d_b}  # fmt: skip
    before = {k: [p.detach().clone() for p in net.parameters()] for k, net in nets.items()}
    losses = step(parts, obj, batch)
    assert list(losses) == list(obj.loss_names)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    for name, net in nets.items():
        changed = [not torch.equal(p, q) for p, q in zip(before[name], net.parameters())]
        assert all(changed), name  # every weight tensor of every network moved
    assert len(obj.pool_a) == len(obj.pool_b) == 2  # each discriminator's pool took the batch's two fakes


def weights(parts: Trainables) -> list[torch.Tensor]:
    return [*parts.generator.state_dict().values(), *parts.discriminator.state_dict().values()]


def test_checkpoint_keeps_the_pools_and_resume_is_bit_identical(tmp_path):
    """3 steps straight = 2 steps, a checkpoint through the real payload and loader (weights_only), 1 more step."""
    straight, obj, batch = setup_run(0)
    for _ in range(3):
        step(straight, obj, batch)
    torch.manual_seed(123)  # (what the interrupted run's process does next does not matter)

    first, obj1, batch = setup_run(0)
    for _ in range(2):
        step(first, obj1, batch)
    assert len(obj1.pool_a) == 2  # full: the third step draws from the pools
    state = LoopState(step=2, per_epoch=10)
    payload = checkpoint_payload(tiny_cfg(), extra(), first, state)
    assert set(payload["objective_state"]) == {"pool_a", "pool_b"}
    save_checkpoint(tmp_path / "c.pt", payload)
    ckpt = load_checkpoint(tmp_path / "c.pt")  # weights_only: tensors, numbers and strings only

    resumed, obj2, batch = setup_run(7)  # other initial weights, an empty pool
    restore(ckpt, resumed, LoopState(per_epoch=10))
    assert torch.equal(obj2.pool_b.state_dict()["images"], obj1.pool_b.state_dict()["images"])
    step(resumed, obj2, batch)
    assert all(torch.equal(p, q) for p, q in zip(weights(straight), weights(resumed)))
    pools, pools2 = obj.pool_a.images + obj.pool_b.images, obj2.pool_a.images + obj2.pool_b.images
    assert len(pools) == 4 and all(torch.equal(p, q) for p, q in zip(pools, pools2))


def test_stateless_objectives_keep_their_checkpoints(tmp_path):
    parts, _, _ = setup_run(0)
    paired = Trainables(parts.generator, parts.discriminator, parts.opt_g, parts.opt_d, parts.sched_g, parts.sched_d,
                        objective=PairedObjective())  # fmt: skip
    payload = checkpoint_payload(tiny_cfg(), extra(), paired, LoopState(per_epoch=10))
    assert "objective_state" not in payload
    save_checkpoint(tmp_path / "p.pt", payload)
    with pytest.raises(InputError, match="objective_state"):  # a CycleGAN run cannot resume without its pools
        restore(load_checkpoint(tmp_path / "p.pt"), parts, LoopState(per_epoch=10))
    save_checkpoint(tmp_path / "c.pt", checkpoint_payload(tiny_cfg(), extra(), parts, LoopState(per_epoch=10)))
    with pytest.raises(InputError, match="objective_state"):  # nor a paired run from a CycleGAN checkpoint
        restore(load_checkpoint(tmp_path / "c.pt"), paired, LoopState(per_epoch=10))
