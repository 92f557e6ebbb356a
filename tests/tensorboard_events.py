"""TensorBoard event files read record by record (TensorBoard's loader without its conversions, no accumulator):
what each tag holds at each step once the purges a resumed run asks for are applied, so a step logged twice shows."""

from __future__ import annotations

from pathlib import Path


def event_files(folder: Path) -> list[Path]:
    """The event files in ``folder``, oldest first (by the wall time of each file's first record)."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader as EventFileLoader

    files = [p for p in folder.iterdir() if ".tfevents." in p.name]
    return sorted(files, key=lambda p: next(iter(EventFileLoader(str(p)).Load())).wall_time)


def logged_steps(folder: Path) -> dict[str, list[tuple[int, float | None]]]:
    """tag -> [(step, scalar value or None for an image), ...] in the order written, over every event file of
    ``folder``. A ``SessionLog.START`` record at step S (what ``SummaryWriter(purge_step=S)`` writes first) drops the
    records of every tag at steps >= S written before it, as TensorBoard defines it
    (``event_accumulator._CheckForRestartAndMaybePurge``); nothing else is dropped."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader as EventFileLoader
    from tensorboard.compat.proto.event_pb2 import SessionLog

    tags: dict[str, list[tuple[int, float | None]]] = {}
    for path in event_files(folder):
        for event in EventFileLoader(str(path)).Load():
            if event.HasField("session_log") and event.session_log.status == SessionLog.START:
                tags = {tag: [(s, v) for s, v in items if s < event.step] for tag, items in tags.items()}
            if event.HasField("summary"):
                for value in event.summary.value:
                    kind = value.WhichOneof("value")
                    tags.setdefault(value.tag, []).append((event.step, value.simple_value if kind == "simple_value" else None))
    return tags
