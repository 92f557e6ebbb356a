import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import pix2gan.data.subjects as subjects_mod
from pix2gan.config import DataConfig
from pix2gan.data.intensity import intensity_maps
from pix2gan.data.planes import context_stack
from pix2gan.data.slices import SliceCache, pad_to
from pix2gan.data.subjects import Subject, find_subjects, split_subjects
from pix2gan.data.unpaired import (
    ImageFolderPair,
    UnpairedSlices,
    find_unpaired_subjects,
    modality_cache,
    split_unpaired,
)
from pix2gan.errors import InputError


@pytest.fixture(scope="module")
def halves(tiny_data, tmp_path_factory) -> Path:
    """tiny_data with sub-001 holding only t1, sub-002 only ct, sub-003..005 both, and a folder with a mask alone."""
    root = tmp_path_factory.mktemp("unpaired") / "data"
    shutil.copytree(tiny_data, root)
    (root / "sub-001" / "ct.nii.gz").unlink()
    (root / "sub-002" / "t1.nii.gz").unlink()
    (root / "sub-006").mkdir()
    shutil.copy(root / "sub-003" / "mask.nii.gz", root / "sub-006" / "mask.nii.gz")
    return root


def make_data(root, subjects=None, *, image_size=32, flip=False, min_foreground=0.0, context=0, planes=()):
    dc = DataConfig(root=str(root), planes=planes)
    subjects = find_unpaired_subjects(root, "t1", "ct", ["mask"]) if subjects is None else subjects
    src_map, dst_map = intensity_maps(dc)
    return UnpairedSlices(modality_cache(subjects, dc, "t1", src_map), modality_cache(subjects, dc, "ct", dst_map),
                          image_size, flip=flip, min_foreground=min_foreground, context=context)  # fmt: skip


def side_slice(data: UnpairedSlices, side: int, item: tuple[int, int, int], context: int = 0) -> torch.Tensor:
    s_idx, p, k = item
    s = data.caches[side].subjects[s_idx]
    return context_stack(s.along(s.axes[p])[0], k, context)


def test_subjects_with_one_side_are_found_and_a_folder_with_neither_is_skipped_in_one_line(halves, caplog):
    with caplog.at_level(logging.WARNING, logger="pix2gan"):
        subjects = find_unpaired_subjects(halves, "t1", "ct", ["mask"])
    assert {s.id: set(s.files) for s in subjects} == {
        "sub-001": {"t1", "mask"}, "sub-002": {"ct", "mask"},
        **{f"sub-00{i}": {"t1", "ct", "mask"} for i in (3, 4, 5)},
    }  # fmt: skip
    assert [r.getMessage() for r in caplog.records] == [
        f"{halves}: skipped 1 subject folder holding neither t1 nor ct: sub-006"
    ]


def test_no_subject_with_the_source_or_the_target_is_refused_naming_the_folder(tiny_data, tmp_path):
    for missing, other in (("t1", "ct"), ("ct", "t1")):
        root = tmp_path / f"no-{missing}"
        shutil.copytree(tiny_data, root)
        for f in root.glob(f"*/{missing}.nii.gz"):
            f.unlink()
        with pytest.raises(InputError, match=rf"^{root}: no subject has a '{missing}' volume .*; the subjects hold "
                                             rf"{', '.join(sorted([other, 'mask']))}$") as exc:  # fmt: skip
            find_unpaired_subjects(root, "t1", "ct", ["mask"])
        assert "\n" not in str(exc.value)
    with pytest.raises(InputError, match="data folder not found"):
        find_unpaired_subjects(tmp_path / "nothing", "t1", "ct")
    with pytest.raises(InputError, match="both 't1'"):
        find_unpaired_subjects(tiny_data, "t1", "t1")


def fake(sid: str, *modalities: str) -> Subject:
    return Subject(sid, Path(sid), {m: Path(f"{sid}/{m}.nii.gz") for m in modalities})


def test_split_holds_out_only_subjects_with_both_as_split_subjects_would():
    both = [fake(f"b{i:02d}", "t1", "ct", "mask") for i in range(10)]
    ones = [fake(f"s{i}", "t1") for i in range(4)] + [fake(f"d{i}", "ct", "mask") for i in range(3)]
    split = split_unpaired(both + ones, "t1", "ct", 0.1, 0.2, seed=5)
    direct = split_subjects([s.id for s in both], 0.1, 0.2, seed=5)  # the fractions of the 10 subjects with both
    assert split["val"] == direct["val"] and split["test"] == direct["test"]
    assert [len(split[k]) for k in ("val", "test")] == [1, 2]
    assert split["train"] == sorted(direct["train"] + [s.id for s in ones])  # every one-sided subject trains
    assert split == split_unpaired(list(reversed(ones + both)), "t1", "ct", 0.1, 0.2, seed=5)  # deterministic
    assert split != split_unpaired(both + ones, "t1", "ct", 0.1, 0.2, seed=6)
    # every subject holding both (aligned or misregistered pairs): the split of paired mode, subject for subject
    assert split_unpaired(both, "t1", "ct", 0.1, 0.2, seed=5) == direct
    # without a subject holding both: everything trains, nothing is held out
    assert split_unpaired(ones, "t1", "ct", 0.1, 0.2, seed=5) == {"train": sorted(s.id for s in ones), "val": [],
                                                                   "test": []}  # fmt: skip


def test_one_sided_subjects_are_read_and_used_on_their_side_only(halves, monkeypatch):
    calls = []
    real = subjects_mod.load_volume
    monkeypatch.setattr(subjects_mod, "load_volume", lambda p, **k: calls.append(p) or real(p, **k))
    data = make_data(halves)
    read = {(Path(p).parent.name, Path(p).name.split(".")[0]) for p in calls}
    both = {(f"sub-00{i}", m) for i in (3, 4, 5) for m in ("t1", "ct", "mask")}
    assert read == {("sub-001", "t1"), ("sub-001", "mask"), ("sub-002", "ct"), ("sub-002", "mask")} | both
    assert len(calls) == len(read) + 3  # each volume once; only the mask of a subject with both is read per side
    src_ids = [s.id for s in data.caches[0].subjects]
    dst_ids = [s.id for s in data.caches[1].subjects]
    assert src_ids == ["sub-001", "sub-003", "sub-004", "sub-005"]
    assert dst_ids == ["sub-002", "sub-003", "sub-004", "sub-005"]
    assert {src_ids[i] for i, _, _ in data.src_items} == set(src_ids)  # the t1-only subject's slices are sources
    assert {dst_ids[i] for i, _, _ in data.dst_items} == set(dst_ids)  # the ct-only subject's slices are targets
    assert len(data) == max(len(data.src_items), len(data.dst_items)) == 36


def test_each_side_is_normalised_by_its_own_map_as_in_paired_mode(tiny_data):
    dc = DataConfig(root=str(tiny_data))
    subjects = find_subjects(tiny_data, ["t1", "ct"], ["mask"])[:2]
    paired = SliceCache(subjects, dc, *intensity_maps(dc))
    data = make_data(tiny_data, subjects)
    for a, b, c in zip(paired.subjects, data.caches[0].subjects, data.caches[1].subjects, strict=True):
        assert torch.equal(a.src, b.src) and torch.equal(a.dst, c.src) and torch.equal(a.mask, c.mask)
        assert (a.src_scale, a.dst_scale) == (b.src_scale, c.src_scale) and c.dst is None
    assert data.reference_scale("dst") == paired.reference_scale("dst") == (-1024.0, 3000.0)
    assert data.reference_scale("src") == paired.reference_scale("src")


def test_the_target_slice_is_drawn_independently_of_the_source_slice(halves):
    data = make_data(halves)  # crops of 32 on 32 x 32 slices, no flips: the items are whole slices
    n_dst = len(data.dst_items)
    drawn = []
    for seed in range(100):
        item = data[(7, seed)]
        assert torch.equal(item["src"], side_slice(data, 0, data.src_items[7]))  # the source: slice 7 every time
        g = torch.Generator().manual_seed(seed)
        for _ in range(3):  # the source crop's top, left and flip draws
            torch.rand((), generator=g)
        j = int(torch.randint(0, n_dst, (), generator=g))
        assert torch.equal(item["dst"], side_slice(data, 1, data.dst_items[j]))
        drawn.append(j)
    assert len(set(drawn)) >= 0.8 * n_dst  # 100 uniform draws of 36 miss ~2 of them
    assert len({j for j in drawn if data.dst_items[j][0] != data.src_items[7][0]}) > 0  # other subjects too


@pytest.mark.parametrize("image_size,planes", [(16, ()), (40, ()), (16, ("axial", "coronal"))])
def test_crops_flips_and_context_against_a_direct_computation(halves, image_size, planes):
    data = make_data(halves, image_size=image_size, flip=True, context=1, planes=planes)
    assert {p for _, p, _ in data.src_items} == {p for _, p, _ in data.dst_items} == set(range(max(1, len(planes))))
    flips = set()
    for index, seed in ((0, 1), (5, 2), (20, 3), (35, 4), (11, 9), (40 % len(data), 5), (70 % len(data), 6)):
        item = data[(index, seed)]
        assert set(item) == {"src", "dst"}
        assert item["src"].shape == (3, image_size, image_size) and item["dst"].shape == (1, image_size, image_size)
        assert item["src"].dtype == item["dst"].dtype == torch.float32
        assert item["src"].min() >= -1 and item["src"].max() <= 1 and item["dst"].min() >= -1 and item["dst"].max() <= 1
        assert all(torch.equal(a, b) for a, b in zip(item.values(), data[(index, seed)].values(), strict=True))
        g = torch.Generator().manual_seed(seed)
        expected = []
        for side, slice_item, context in ((0, data.src_items[index % len(data.src_items)], 1), (1, None, 0)):
            if slice_item is None:
                slice_item = data.dst_items[int(torch.randint(0, len(data.dst_items), (), generator=g))]
            stack, _ = pad_to(side_slice(data, side, slice_item, context), image_size, image_size, -1.0)
            top = int(torch.randint(0, stack.shape[-2] - image_size + 1, (), generator=g))
            left = int(torch.randint(0, stack.shape[-1] - image_size + 1, (), generator=g))
            crop = stack[:, top : top + image_size, left : left + image_size]
            flip = bool(torch.rand((), generator=g) < 0.5)
            flips.add(flip)
            expected.append(crop.flip(-2) if flip else crop)
        assert torch.equal(item["src"], expected[0]) and torch.equal(item["dst"], expected[1])
        if image_size > 32:  # padded with air around the 32 x 32 slice (a coronal slice, 32 x 9, is padded too)
            assert (item["src"][:, :4] == -1).all() and (item["dst"][..., -4:] == -1).all()
    assert flips == {True, False}


def test_min_foreground_applies_per_side_with_the_subjects_mask(halves):
    data = make_data(halves, min_foreground=0.3)
    for side, items in ((0, data.src_items), (1, data.dst_items)):
        expected = [(i, 0, k) for i, s in enumerate(data.caches[side].subjects)
                    for k in range(s.mask.shape[0]) if s.mask[k].float().mean() >= 0.3]  # fmt: skip
        assert items == expected and 0 < len(items) < 36
    with pytest.raises(InputError, match=rf"^{halves}: no t1 slices with enough foreground to train on$"):
        make_data(halves, min_foreground=1.01)


def write_images(folder: Path, values: list, mode: str) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for i, v in enumerate(values):
        img = np.zeros((12, 12, 3) if mode == "RGB" else (12, 12), np.uint8)
        img[...] = v
        img[:, :3] = 255  # a bright left edge: a left-right flip moves it to the right
        Image.fromarray(img, mode).save(folder / f"{i}.png")


def test_image_folder_pair_samples_the_two_folders_independently(tmp_path):
    write_images(tmp_path / "horse", [10, 60, 110], "L")
    write_images(tmp_path / "zebra", [(20 * i, 0, 0) for i in range(5)], "RGB")
    data = ImageFolderPair(tmp_path / "horse", tmp_path / "zebra", 8)
    assert len(data) == 5 and data.channels == (1, 3)
    zebras, flips = set(), set()
    for seed in range(40):
        item = data[(4, seed)]
        assert item["src"].shape == (1, 8, 8) and item["dst"].shape == (3, 8, 8)
        assert item["src"].dtype == item["dst"].dtype == torch.float32
        assert torch.equal(item["src"].amin(), data.a[4 % 3].amin())  # the source: image 4 % 3 every time
        flipped = [bool(x[0, :, -1].mean() > x[0, :, 0].mean()) for x in (item["src"], item["dst"])]
        g = torch.Generator().manual_seed(seed)
        flip_a = bool(torch.rand((), generator=g) < 0.5)
        j = int(torch.randint(0, 5, (), generator=g))
        flip_b = bool(torch.rand((), generator=g) < 0.5)
        assert flipped == [flip_a, flip_b]
        assert torch.equal(item["dst"], data.b[j].flip(-1) if flip_b else data.b[j])
        zebras.add(j), flips.add(flip_a)
    assert zebras == set(range(5)) and flips == {True, False}
    assert ImageFolderPair(tmp_path / "horse", tmp_path / "zebra", 8, channels=3).channels == (3, 3)
    with pytest.raises(InputError, match=rf"^{tmp_path / 'zebras'}: data folder not found$"):
        ImageFolderPair(tmp_path / "horse", tmp_path / "zebras", 8)
