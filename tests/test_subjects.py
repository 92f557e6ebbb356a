import shutil

import numpy as np
import pytest

from helpers import write_nifti
from pix2gan.data.subjects import find_subjects, load_subject, split_subjects
from pix2gan.errors import InputError


def test_find_subjects_in_generated_data(tiny_data):
    subjects = find_subjects(tiny_data, ["t1", "ct"], ["mask", "pet"])
    assert [s.id for s in subjects] == [f"sub-{i:03d}" for i in range(1, 6)]
    assert set(subjects[0].files) == {"t1", "ct", "mask"}


def test_errors(tmp_path, tiny_data):
    with pytest.raises(InputError, match="data folder not found"):
        find_subjects(tmp_path / "nothing", ["t1", "ct"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no subject folders"):
        find_subjects(tmp_path / "empty", ["t1", "ct"])
    with pytest.raises(InputError, match=r"unknown modality 'pd'; the subjects hold ct, mask, t1"):
        find_subjects(tiny_data, ["pd", "ct"])
    broken = tmp_path / "broken"
    shutil.copytree(tiny_data, broken)
    (broken / "sub-003" / "ct.nii.gz").unlink()
    with pytest.raises(InputError, match=r"sub-003: subject has no ct\.nii\.gz"):
        find_subjects(broken, ["t1", "ct"])


def test_split_is_deterministic_by_subject_and_disjoint():
    ids = [f"p{i:02d}" for i in range(20)]
    a = split_subjects(ids, 0.1, 0.2, seed=5)
    assert a == split_subjects(list(reversed(ids)), 0.1, 0.2, seed=5)
    assert a != split_subjects(ids, 0.1, 0.2, seed=6)
    assert [len(a[k]) for k in ("train", "val", "test")] == [14, 2, 4]
    assert sorted(a["train"] + a["val"] + a["test"]) == ids


@pytest.mark.parametrize("n,expected", [(1, [1, 0, 0]), (2, [2, 0, 0]), (3, [1, 1, 1]), (5, [3, 1, 1]), (14, [10, 1, 3])])
def test_split_sizes(n, expected):
    s = split_subjects([str(i) for i in range(n)], 0.1, 0.2)
    assert [len(s[k]) for k in ("train", "val", "test")] == expected


def test_load_subject_checks_grids(tmp_path):
    for name, shape in (("t1", (4, 4, 4)), ("ct", (4, 4, 5))):
        write_nifti(tmp_path / "s1" / f"{name}.nii.gz", np.ones(shape, np.float32))
    subject = find_subjects(tmp_path, ["t1", "ct"])[0]
    with pytest.raises(InputError, match=r"ct\.nii\.gz: shape \(4, 4, 5\) differs from t1\.nii\.gz"):
        load_subject(subject, ["t1", "ct"])
