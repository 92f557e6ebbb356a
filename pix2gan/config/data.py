"""The data section of a run: where paired volumes live, how they are sliced and normalised."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pix2gan.config.base import PLANES, IntensityKind, _check_enum, _FromDict

__all__ = ["DataConfig", "image_folder_names"]


@dataclass
class DataConfig(_FromDict):
    """Where the paired data lives and how slices are made from it.

    Args:
        root: folder holding one sub-folder per subject with ``<modality>.nii[.gz]`` files.
        src: source modality name (network input), e.g. ``t1``; several, comma-separated and ordered, for
            many-to-one synthesis (``t1,zte``: :attr:`sources`), each normalised by its own map.
        dst: target modality name (network output), e.g. ``ct``.
        mask: optional body-mask modality name; used for metrics and to skip empty slices.
        slice_axis: array axis the volume is sliced along (2 = axial for RAS-ordered scans); the one-plane case.
        planes: anatomical planes to slice along (any of ``axial``, ``coronal``, ``sagittal``), each found in every
            volume from its affine; empty: the one array axis ``slice_axis``. One model learns all planes; slices
            keep their voxels (no resampling: non-square slices are padded), so outputs stay on the input's grid.
        context: neighbouring slices on each side fed to the generator as extra channels (2.5-D; 0 = 2-D pix2pix).
            Neighbours beyond the volume's ends repeat the end slice.
        src_intensity / dst_intensity: normalisation of each modality (``hu`` or ``percentile``); default from the
            modality's name: CT-like names (``ct``, ``cbct``, ``sct``) get the HU window, others percentiles. Given,
            ``src_intensity`` applies to every source.
        src_intensities: each source's normalisation, in the order of :attr:`sources` (set from ``src_intensity``
            or each source's name; ``src_intensity`` is the first's).
        input_dropout: with several sources, the probability that training zero-fills each source (never all of a
            slice's); the generator then gets one availability channel per source (1 present, 0 missing) and
            translates from any non-empty subset (0: every source is needed).
        percentiles: lower/upper percentiles for ``percentile`` normalisation.
        hu_window: clip window in HU for ``hu`` normalisation (SynthRAD: [-1024, 3000]).
        val_fraction / test_fraction: share of subjects held out (at least one each when there are >= 3).
        split_seed: seed of the deterministic subject split.
        min_foreground: slices whose mask covers less than this fraction are not used for training.
        labels: noise/class modes on NIfTI data: ``level`` (anatomical level of the slice) or a CSV ``subject,label``.
        data_root: where torchvision data sets (``mnist``, ``fashion-mnist``, ``cifar10``) live.
        download: let torchvision download its data set (never implied).
        data_b: unpaired mode on 2-D images: folder B (the targets) of PNG, JPEG or BMP images; ``root`` is then
            folder A (the sources) and ``src`` / ``dst`` only name the two (:func:`image_folder_names`).
    """

    root: str = "samples"
    src: str = "t1"
    dst: str = "ct"
    mask: str | None = "mask"
    slice_axis: int = 2
    planes: tuple[str, ...] = ()
    context: int = 0
    src_intensity: IntensityKind | None = None  # None: from the modality's name (default_intensity)
    dst_intensity: IntensityKind | None = None
    src_intensities: tuple[IntensityKind, ...] = ()  # one per source; () : from src_intensity or the names
    input_dropout: float = 0.0
    percentiles: tuple[float, float] = (0.5, 99.5)
    hu_window: tuple[float, float] = (-1024.0, 3000.0)
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    split_seed: int = 0
    min_foreground: float = 0.01
    labels: str | None = None
    data_root: str | None = None
    download: bool = False
    data_b: str | None = None

    def __post_init__(self) -> None:
        self.src = ",".join(n.strip() for n in str(self.src).split(","))
        sources = self.sources
        if not all(sources):
            raise ValueError(f"--src {self.src!r}: an empty modality name in the list")
        if len(set(sources)) != len(sources):
            raise ValueError(f"--src {self.src!r}: a source is named twice")
        if self.dst in sources and len(sources) > 1:
            raise ValueError(f"--src {self.src!r}: the target {self.dst!r} cannot also be a source")
        if len(self.src_intensities) != len(sources):  # a new config, or another list of sources
            given = self.src_intensity
            self.src_intensities = tuple(self.default_intensity(n) if given is None else given for n in sources)
        self.src_intensities = tuple(_check_enum("DataConfig", "src_intensities", k, IntensityKind)
                                     for k in self.src_intensities)  # fmt: skip
        self.src_intensity = self.src_intensities[0]
        if self.dst_intensity is None:
            self.dst_intensity = self.default_intensity(self.dst)
        self.src_intensity = _check_enum("DataConfig", "src_intensity", self.src_intensity, IntensityKind)
        self.dst_intensity = _check_enum("DataConfig", "dst_intensity", self.dst_intensity, IntensityKind)
        self.percentiles = tuple(float(p) for p in self.percentiles)  # type: ignore[assignment]
        self.hu_window = tuple(float(p) for p in self.hu_window)  # type: ignore[assignment]
        if self.slice_axis not in (0, 1, 2):
            raise ValueError(f"DataConfig.slice_axis must be 0, 1 or 2, got {self.slice_axis}")
        self.planes = tuple(str(p).lower() for p in self.planes)
        for plane in self.planes:
            if plane not in PLANES:
                raise ValueError(f"DataConfig.planes: {plane!r} is not one of {', '.join(PLANES)}")
        if len(set(self.planes)) != len(self.planes):
            raise ValueError(f"DataConfig.planes: a plane is named twice in {', '.join(self.planes)}")
        if not 0 <= self.context <= 16:
            raise ValueError(f"DataConfig.context must be in [0, 16], got {self.context}")
        lo, hi = self.percentiles
        if not 0.0 <= lo < hi <= 100.0:
            raise ValueError(f"DataConfig.percentiles must satisfy 0 <= lo < hi <= 100, got {self.percentiles}")
        if not self.hu_window[0] < self.hu_window[1]:
            raise ValueError(f"DataConfig.hu_window must be increasing, got {self.hu_window}")
        if not 0.0 <= self.input_dropout < 1.0:
            raise ValueError(f"--input-dropout must be in [0, 1), got {self.input_dropout}")
        if self.input_dropout and len(sources) < 2:
            raise ValueError(f"--input-dropout drops one of several sources; --src {self.src} names one (give e.g. "
                             f"--src {self.src},zte)")  # fmt: skip
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"DataConfig.{name} must be in [0, 1), got {value}")

    @property
    def sources(self) -> tuple[str, ...]:
        """The source modalities, in the order of the generator's channels.

        Example:
            >>> DataConfig(src="t1, zte").sources, DataConfig().sources
            (('t1', 'zte'), ('t1',))
        """
        return tuple(self.src.split(","))

    @property
    def optional_sources(self) -> bool:
        """Whether the model learnt to do without any of its sources (trained with input dropout)."""
        return self.input_dropout > 0

    @staticmethod
    def default_intensity(modality: str) -> IntensityKind:
        """CT-like modalities get the HU window, everything else per-volume percentiles."""
        return IntensityKind.HU if modality.lower() in {"ct", "cbct", "sct"} else IntensityKind.PERCENTILE


def image_folder_names(a: str | Path, b: str | Path) -> tuple[str, str]:
    """The names of two image folders' domains (``--src`` / ``--dst`` when not given): the folders' own names, or
    ``a`` and ``b`` when they have none or the same one.

    Example:
        >>> image_folder_names("data/horse", "data/zebra"), image_folder_names("horse/train", "zebra/train")
        (('horse', 'zebra'), ('a', 'b'))
    """
    names = Path(a).resolve().name, Path(b).resolve().name
    return names if all(names) and names[0] != names[1] else ("a", "b")
