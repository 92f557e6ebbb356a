"""``pix2gan train --config FILE``: a run's settings from a YAML (``.yaml``, ``.yml``) or JSON (``.json``) file.

Two shapes are read:

- **flat**: the option names of ``pix2gan train`` (:data:`pix2gan.config.flat.OPTIONS`) and ``mode``, e.g.
  ``src: t1`` (several sources as a list, ``src: [t1, zte]``, or ``src: t1,zte``), ``gan-loss: lsgan``,
  ``planes: [axial, coronal]`` (``-`` and ``_`` are the same). Options the file
  does not set take the library's defaults for the mode, exactly as on the command line.
- **nested**: a run's own ``config.json`` (the sections ``data``, ``model``, ``train``, ``gan``, ``infer`` of
  :class:`~pix2gan.config.RunConfig`). Every value in it is already resolved, so training from it repeats that run;
  a field it lacks takes the dataclass default, as when a config written by an older version is loaded.

Options given on the command line override the file (:func:`run_config_with_file`). Every problem with the file is
one :class:`~pix2gan.errors.InputError` line naming the file and the key.

Example:
    >>> import json, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "cfg.json"
    >>> _ = path.write_text(json.dumps({"src": "t1", "dst": "ct", "gan-loss": "lsgan", "gan-warmup": 0, "epochs": 50}))
    >>> load_config_file(path)
    {'src': 't1', 'dst': 'ct', 'gan_loss': 'lsgan', 'gan_warmup': 0.0, 'epochs': 50}
    >>> cfg = run_config_with_file(path, epochs=3)  # an option given wins over the file
    >>> (cfg.train.epochs, cfg.train.gan_loss.value, cfg.train.lr)
    (3, 'lsgan', 0.0002)
    >>> _ = path.write_text(json.dumps({"epochs": "many"}))
    >>> load_config_file(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pix2gan.errors.InputError: ...cfg.json: epochs: expected an integer, got 'many'
"""

from __future__ import annotations

import difflib
import enum
import functools
import json
import types
import typing
from pathlib import Path
from typing import Any

from pix2gan.config import DataConfig, GanModelConfig, InferConfig, Mode, ModelConfig, RunConfig, TrainConfig
from pix2gan.config.flat import OPTIONS, resolve_root
from pix2gan.errors import InputError

__all__ = ["CONFIG_SUFFIXES", "SECTIONS", "read_config_file", "load_config_file", "run_config_with_file"]

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "gan": GanModelConfig,
                             "infer": InferConfig}  # fmt: skip


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping a YAML or JSON file holds (an empty file: ``{}``), or one clear error.

    Raises:
        InputError: the file is missing, has another suffix, cannot be parsed, or does not hold a mapping.
    """
    path = Path(path)
    if path.suffix.lower() not in CONFIG_SUFFIXES:
        raise InputError(f"{path}: a config file is .yaml, .yml or .json")
    if not path.exists():
        raise InputError(f"{path}: config file not found")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the config file ({exc})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise InputError(f"{path}: not valid YAML ({where}{problem})") from None
        data = {} if data is None else data
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of option names to values, got {_show(data)}")
    return data


def load_config_file(path: str | Path) -> dict[str, Any] | RunConfig:
    """The settings of a config file: flat option names -> checked values (``mode`` among them when the file sets
    it), or a :class:`RunConfig` for a run's nested ``config.json``.

    A flat file's values have the options' types (numbers, text, true/false, lists, the choices' names); ``null``
    sets an option to its default, except ``mask: null``: no mask (as ``mask: ''``). A nested file's fields have the
    dataclasses' types; its relative data folder is taken from the current folder, as ``--data`` is.

    Raises:
        InputError: see :func:`read_config_file`; an unknown key, a value of the wrong type or an unknown choice
            (``cfg.yaml: epochs: expected an integer, got 'many'``); a value the configuration refuses.
    """
    data = read_config_file(path)
    if any(key in SECTIONS and isinstance(value, dict) for key, value in data.items()):
        return _nested(Path(path), data)
    return _flat(Path(path), data)


def run_config_with_file(path: str | Path | None = None, mode: Mode | str | None = None, **options: Any) -> RunConfig:
    """The configuration ``pix2gan train`` trains with: the file's settings (none without ``path``), then the
    options given (not None), which win; ``mode`` None: the file's mode, else paired.

    Example:
        >>> run_config_with_file(None, "class", epochs=3).train.epochs
        3

    Raises:
        InputError: a problem with the file (:func:`load_config_file`), or ``mode`` differs from a nested file's.
        ValueError: an option value the configuration refuses.
    """
    if path is None:
        return RunConfig.from_options(Mode.PAIRED if mode is None else mode, **options)
    settings = load_config_file(path)
    if isinstance(settings, RunConfig):
        if mode is not None and str(mode) != settings.mode.value:
            raise InputError(f"{path}: holds a {settings.mode.value}-mode run configuration; --mode {mode} cannot change it")
        return settings.with_options(**options)
    settings = dict(settings)
    file_mode = settings.pop("mode", None)
    given = {k: v for k, v in options.items() if v is not None}
    if given.keys() & {"minutes", "epochs"}:  # an option given sets the run's length: the file's is dropped
        for name in ("minutes", "epochs"):
            settings.pop(name, None)
    try:
        return RunConfig.from_options(mode or file_mode or Mode.PAIRED, **{**settings, **given})
    except InputError:
        raise
    except ValueError as exc:  # a value the dataclasses refuse (out of range, an unknown plane, ...)
        raise InputError(f"{path}: {exc}") from None


# --------------------------------------------------------------------------------------------------------------------
# the two shapes
# --------------------------------------------------------------------------------------------------------------------
def _flat(path: Path, data: dict[Any, Any]) -> dict[str, Any]:
    """Flat option names -> checked values."""
    names = ["mode", *OPTIONS]
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_") if isinstance(key, str) else key
        if name not in names:  # (a mapping: a misspelt section of a run's config.json?)
            raise InputError(f"{path}: {_unknown(key, list(SECTIONS) if isinstance(value, dict) else names, 'option')}")
        if name in out:
            raise InputError(f"{path}: {key}: option given twice")
        if value is None:  # the default, as an option not given; for mask, no mask
            out[name] = "" if name == "mask" else None
            continue
        out[name] = _checked(path, key, _option_type(name), _source_list(name, value))
    return out


def _nested(path: Path, data: dict[Any, Any]) -> RunConfig:
    """A run's config.json -> RunConfig; missing sections and fields take the dataclasses' defaults."""
    sections: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if key not in SECTIONS:
            raise InputError(f"{path}: {_unknown(key, list(SECTIONS), 'section')}; a file has either the sections of a "
                             f"run's config.json ({', '.join(SECTIONS)}) or flat option names")  # fmt: skip
        if not isinstance(value, dict):
            raise InputError(f"{path}: {key}: expected a mapping of fields, got {_show(value)}")
        fields = _field_types(SECTIONS[key])
        sections[key] = {}
        for name, field_value in value.items():
            if name not in fields:
                raise InputError(f"{path}: {key}.{_unknown(name, list(fields), 'field')}")
            value_in = _source_list(name, field_value) if key == "data" else field_value
            sections[key][name] = _checked(path, f"{key}.{name}", fields[name], value_in)
    data_section = sections.setdefault("data", {})
    mode = Mode(sections.get("train", {}).get("mode", Mode.PAIRED))
    if "root" in data_section:  # a relative folder is taken from the current folder (config.json holds absolute ones)
        data_section["root"] = resolve_root(data_section["root"], mode)
    if data_section.get("data_b") is not None:
        data_section["data_b"] = str(Path(data_section["data_b"]).resolve())
    try:
        return RunConfig(**{name: cls(**sections.get(name, {})) for name, cls in SECTIONS.items()})
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None


# --------------------------------------------------------------------------------------------------------------------
# value checks
# --------------------------------------------------------------------------------------------------------------------
class _Mismatch(Exception):
    """A value that does not have the expected type; the message says what was expected."""


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    """The resolved type of every field of a config dataclass (the modules use postponed annotations)."""
    return typing.get_type_hints(cls)


def _option_type(name: str) -> Any:
    """The type of a flat option: that of the first field it sets (``beta1``/``beta2``: a number)."""
    if name == "mode":
        return Mode
    if not OPTIONS[name]:
        return float  # beta1, beta2: one of train.betas
    section, key = OPTIONS[name][0]
    return _field_types(SECTIONS[section])[key]


def _source_list(name: str, value: Any) -> Any:
    """``src`` given as a list of names (``src: [t1, zte]``) as the command line gives it: ``t1,zte``; any other
    value as it is (a list holding anything but names is then refused as not text).

    Example:
        >>> _source_list("src", ["t1", "zte"]), _source_list("src", "t1"), _source_list("planes", ["axial"])
        ('t1,zte', 't1', ['axial'])
    """
    if name == "src" and isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return ",".join(value)
    return value


def _checked(path: Path, key: Any, kind: Any, value: Any) -> Any:
    try:
        return _coerce(kind, value)
    except _Mismatch as exc:
        raise InputError(f"{path}: {key}: expected {exc}, got {_show(value)}") from None


def _coerce(kind: Any, value: Any) -> Any:
    """``value`` as a field of type ``kind`` takes it (ints as floats, lists as tuples), or :class:`_Mismatch`.

    Example:
        >>> _coerce(float, 3), _coerce(float, "1e-3"), _coerce(tuple[str, ...], "axial,coronal")
        (3.0, 0.001, ('axial', 'coronal'))
        >>> _coerce(int | None, None) is None, _coerce(Mode, "class")
        (True, 'class')
    """
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = typing.get_args(kind)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value)
    if typing.get_origin(kind) is tuple:
        args = typing.get_args(kind)
        if isinstance(value, str) and args == (str, Ellipsis):  # "axial,coronal", as on the command line
            value = [v.strip() for v in value.split(",") if v.strip()]
        ellipsis = len(args) == 2 and args[1] is Ellipsis
        what = f"a list of {'' if ellipsis else f'{len(args)} '}{_plural(args[0])}"
        if not isinstance(value, (list, tuple)) or (not ellipsis and len(value) != len(args)):
            raise _Mismatch(what)
        kinds = [args[0]] * len(value) if ellipsis else list(args)
        try:
            return tuple(_coerce(k, v) for k, v in zip(kinds, value, strict=True))
        except _Mismatch:
            raise _Mismatch(what) from None
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        choices = [k.value for k in kind]
        if value not in choices:
            raise _Mismatch(f"one of {', '.join(choices)}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise _Mismatch("true or false")
        return value
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Mismatch("an integer")
        return value
    if kind is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as text
            try:
                return float(value)
            except ValueError:
                raise _Mismatch("a number") from None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _Mismatch("a number")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise _Mismatch("text")
        return value
    raise TypeError(f"no check for fields of type {kind!r}")  # a field type this module does not know yet


def _plural(kind: Any) -> str:
    return {int: "integers", float: "numbers", str: "names", bool: "true/false values"}.get(kind, "values")


def _show(value: Any) -> str:
    """A value as a message shows it: ``'many'``, ``[1, 2]``, ``null``, ``true``, ``a mapping``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def _unknown(key: Any, known: list[str], what: str) -> str:
    """``epoch: unknown option (did you mean 'epochs'?)``."""
    close = difflib.get_close_matches(str(key).replace("-", "_"), known, n=1) if isinstance(key, str) else []
    return f"{key}: unknown {what}" + (f" (did you mean {close[0]!r}?)" if close else "")
