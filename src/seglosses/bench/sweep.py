"""A whole benchmark sweep: data, every (loss, seed) run, the store, the report."""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from .presets import BenchArgumentError, BenchConfig
from .progress import Reporter
from .report import Report, build_report
from .runner import (
    RunFailed,
    RunResult,
    StepRecord,
    case_groups,
    choose_examples,
    count_steps,
    resolve_device,
    train_run,
)
from .store import FILENAME, ResultStore

MM_FORMATS = ("mni-skullstrip", "mni-gm", "nfbs", "nifti")


@dataclass
class SweepOutcome:
    """What a sweep did."""

    out_dir: Path
    report: Report
    finished: int
    failed: int
    skipped: int
    seconds: float


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - not on Unix
        return 0.0


def auto_threads() -> int:
    """CPU threads for training: the cores not already busy (at least 1).

    PyTorch's CPU kernels run OpenMP teams that wait for each other; on cores that other
    processes keep busy, a team of two is several times slower than one thread. So the
    default takes the cores minus the current 1-minute load average, rounded.
    """
    cores = _cores()
    return max(1, min(cores, int(cores - _load() + 0.5)))


def default_out(preset: str) -> Path:
    """``runs/<preset>-<UTC timestamp>``."""
    return Path("runs") / f"{preset}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def check_out_dir(out: Path, config: BenchConfig, resume: bool) -> BenchConfig:
    """Refuse to overwrite; on ``--resume`` check that the folder holds the same configuration.

    Returns the configuration to record (on resume, the stored one extended by any new losses
    and seeds).

    Raises:
        BenchArgumentError: the folder is not empty without ``--resume``, or holds a sweep of
            other settings, or is not a results folder.
    """
    if out.exists() and not out.is_dir():
        raise BenchArgumentError(f"--out {out} exists and is not a folder")
    non_empty = out.is_dir() and any(out.iterdir())
    if not non_empty:
        return config
    if not resume:
        raise BenchArgumentError(
            f"--out {out} already exists and is not empty; pass --resume to continue its sweep "
            "or choose another --out"
        )
    if not (out / FILENAME).is_file():
        raise BenchArgumentError(f"--resume: {out} holds no {FILENAME}; choose another --out")
    try:
        with ResultStore(out, create=False) as store:
            meta = store.meta()
    except Exception as err:  # corrupt or foreign file
        raise BenchArgumentError(f"--resume: cannot read {out / FILENAME}: {err}") from None
    if not meta.get("config"):
        return config
    stored = BenchConfig.from_dict(meta["config"])
    if stored.fingerprint() != config.fingerprint():
        old, new = stored.fingerprint_dict(), config.fingerprint_dict()
        diff = [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(new)
                if old.get(k) != new.get(k)]
        raise BenchArgumentError(
            f"--resume: {out} holds a sweep with other settings ({'; '.join(diff)}); "
            "repeat the original options or choose another --out"
        )
    losses = tuple(stored.losses) + tuple(x for x in config.losses if x not in stored.losses)
    seeds = tuple(sorted(set(stored.seeds) | set(config.seeds)))
    return replace(config, losses=losses, seeds=seeds)


def load_bundle(config: BenchConfig) -> Any:
    """Load the data of a configuration (``seglosses.data.load_data``)."""
    from ..data import load_data

    return load_data(
        config.format, config.data, image_size=config.image_size, seed=config.data_seed,
        subjects=config.subjects, slices_per_subject=config.slices_per_subject,
    )


def data_info(bundle: Any) -> dict[str, Any]:
    """What the report says about the data."""
    volumetric = bool(bundle.volumetric)
    splits = {}
    for name in ("train", "val", "test"):
        part = getattr(bundle, name)
        splits[name] = {"cases": len(case_groups(part.subjects, volumetric)),
                        "slices": int(part.images.shape[0])}
    return {
        "description": str(bundle.description),
        "format": str(bundle.format),
        "volumetric": volumetric,
        "spacing": [float(s) for s in bundle.spacing],
        "spacing_unit": "mm" if bundle.format in MM_FORMATS else "px",
        "splits": splits,
    }


def run_bench(config: BenchConfig, out: str | Path, *, resume: bool = False,
              reporter: Reporter | None = None) -> SweepOutcome:
    """Run (or continue) a sweep into ``out`` and build its report.

    Every finished run is committed to ``out/results.sqlite`` in one transaction before the
    next starts. Runs that fail are recorded as failed and the sweep goes on.

    Raises:
        BenchArgumentError: bad output folder, device or configuration.
        seglosses.data.DataError: unusable data.
    """
    reporter = reporter or Reporter()
    out = Path(out)
    t0 = time.perf_counter()
    config = check_out_dir(out, config, resume)
    try:
        device = resolve_device(config.device)
    except ValueError as err:
        raise BenchArgumentError(str(err)) from None
    threads = config.num_threads or auto_threads()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run_bench(config, out, resume, reporter, device, threads, t0)
    finally:
        torch.set_num_threads(previous_threads)


def _run_bench(config: BenchConfig, out: Path, resume: bool, reporter: Reporter,
               device: torch.device, threads: int, t0: float) -> SweepOutcome:
    if config.note:
        reporter.log(config.note)
    cores = _cores()
    if device.type == "cpu" and threads < cores and not config.num_threads:
        reporter.log(f"cpu: training with {threads} of {cores} cores (the machine is busy: load "
                     f"average {_load():.1f}); --set num_threads=N to choose")
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"cpu, {threads} threads")
    reporter.log(f"loading data: {config.format}" + (f" from {config.data}" if config.data
                                                     else "") + f", {config.image_size} px")
    t_data = time.perf_counter()
    try:
        bundle = load_bundle(config)
    except (ValueError, TypeError) as err:
        from ..data import DataError

        if isinstance(err, DataError):
            raise
        raise BenchArgumentError(f"data: {err}") from None
    data_seconds = time.perf_counter() - t_data
    info = data_info(bundle)
    reporter.log(f"data ready in {data_seconds:.1f} s: {info['description']}")
    s = info["splits"]
    reporter.log(
        f"split: train {s['train']['cases']} / val {s['val']['cases']} / test "
        f"{s['test']['cases']} {'subjects' if info['volumetric'] else 'images'} "
        f"({s['train']['slices']} / {s['val']['slices']} / {s['test']['slices']} slices)"
    )
    if s["train"]["slices"] == 0 or s["val"]["slices"] == 0 or s["test"]["slices"] == 0:
        raise BenchArgumentError("the data gives an empty train, validation or test split; "
                                 "use more subjects or images")

    out.mkdir(parents=True, exist_ok=True)
    session: dict[str, Any] = {"started_at": _now(), "device": where, "threads": threads,
                               "data_seconds": round(data_seconds, 2), "runs_done": 0}
    store = ResultStore(out)
    try:
        test = bundle.test
        if store.is_empty() or not store.meta().get("config"):
            examples = choose_examples(test.masks, test.subjects, config.examples)
            groups = dict((i, cid) for cid, idx in case_groups(test.subjects, bundle.volumetric)
                          for i in idx)
            store.start_sweep(config, info, [
                (i, groups[i], test.images[i, 0].numpy(), test.masks[i, 0].numpy() > 0.5)
                for i in examples
            ])
        else:
            store.set_meta(config=config.to_dict())
            examples = [e["slice_index"] for e in store.example_inputs()]
        store.add_session(session)
        fingerprint = config.fingerprint()
        done = store.finished(fingerprint)
        plan = [(loss, seed) for loss in config.losses for seed in config.seeds]
        skipped = sum(1 for key in plan if key in done)
        reporter.sweep_start(len(plan), skipped)
        n_finished = n_failed = 0
        for loss, seed in plan:
            if (loss, seed) in done:
                continue
            started = _now()
            try:
                result = _one_run(bundle, loss, seed, config, device, examples, reporter)
            except RunFailed as err:
                store.write_failure(loss, seed, config, str(err), started_at=started,
                                    device=where)
                reporter.run_end(loss, seed, None, str(err))
                n_failed += 1
                continue
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as err:  # an unexpected error in one run must not end the sweep
                message = f"{type(err).__name__}: {err}".strip()
                detail = "".join(traceback.format_exception_only(type(err), err)).strip()
                store.write_failure(loss, seed, config, detail or message, started_at=started,
                                    device=where)
                reporter.run_end(loss, seed, None, message)
                n_failed += 1
                continue
            store.write_run(result, config, device=where, example_indices=examples)
            n_finished += 1
            session["runs_done"] = n_finished
            store.add_session(session)
            reporter.run_end(loss, seed, result)
        reporter.sweep_end()
        session.update(finished_at=_now(), seconds=round(time.perf_counter() - t0, 2),
                       runs_done=n_finished, runs_failed=n_failed)
        store.add_session(session)
    finally:
        store.close()
        reporter.close()
    report = build_report(out)
    return SweepOutcome(out, report, n_finished, n_failed, skipped,
                        time.perf_counter() - t0)


def _one_run(bundle: Any, loss: str, seed: int, config: BenchConfig, device: torch.device,
             examples: list[int], reporter: Reporter) -> RunResult:
    steps = count_steps(int(bundle.train.images.shape[0]), config.batch_size) * config.epochs
    reporter.run_start(loss, seed, steps)
    result: RunResult | None = None
    for record in train_run(bundle, loss, seed, config, device=device,
                            example_indices=examples):
        if isinstance(record, RunResult):
            result = record
        elif isinstance(record, StepRecord):
            reporter.step()
        else:
            reporter.epoch(loss, seed, record, config.epochs)
    if result is None:  # pragma: no cover - train_run always ends with a result
        raise RunFailed("the run produced no result")
    return result
