"""What a resumable run needs besides weights: every RNG state, and a clean stop on Ctrl-C or SIGTERM.

RNG states are stored as tensors and JSON text, never as pickled objects, so a checkpoint holding them still loads
with ``torch.load(weights_only=True)``.

Example:
    >>> import random
    >>> state = rng_state()
    >>> a = (random.random(), float(torch.rand(())))
    >>> set_rng_state(state)
    >>> (random.random(), float(torch.rand(()))) == a
    True
"""

from __future__ import annotations

import json
import logging
import random
import signal
import threading
from types import FrameType
from typing import Any

import numpy as np
import torch

__all__ = ["rng_state", "set_rng_state", "seed_everything", "StopSignals"]

log = logging.getLogger("pix2gan")


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators (every device's) with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """torch (CPU and every initialised CUDA device), numpy and Python RNG states as tensors and JSON."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_keys.astype(np.int64)),
        "numpy": json.dumps({"kind": np_kind, "pos": int(np_pos), "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)}),
        "python": json.dumps({"version": py_version, "state": list(py_state), "gauss": py_gauss}),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured (CUDA states only where this machine has those devices)."""
    torch.set_rng_state(state["torch"])
    npj = json.loads(state["numpy"])
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state((npj["kind"], keys, npj["pos"], npj["has_gauss"], npj["gauss"]))
    pyj = json.loads(state["python"])
    random.setstate((pyj["version"], tuple(pyj["state"]), pyj["gauss"]))
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(cuda)[: torch.cuda.device_count()])


class StopSignals:
    """Within ``with``: the first SIGINT (Ctrl-C) or SIGTERM asks the loop to stop after the current step.

    The training loop polls :attr:`requested` between steps, saves a checkpoint and returns; a second Ctrl-C
    aborts at once (``KeyboardInterrupt``). Outside the main thread this does nothing (signals cannot be caught
    there).
    """

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name
        log.warning("%s received: finishing this step and saving a checkpoint (Ctrl-C again to abort)", self.requested)
