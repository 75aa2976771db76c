"""Training a study's models each after the checkpoints it reads, several at once when asked (``jobs``).

A run needs the runs whose checkpoints it reads: its ``base_checkpoint`` (a residual flow's U-Net) and its
``cross_fit`` fold U-Nets. The order is decided by plain functions of names, without torch::

    needs = {"unet_t1": (), "flow_residual_t1": ("unet_t1",), "ddpm_t1": ()}
    training_waves(needs)                    # [["unet_t1", "ddpm_t1"], ["flow_residual_t1"]]
    ready_runs(needs, finished={"unet_t1"}, started={"unet_t1", "ddpm_t1"})   # ["flow_residual_t1"]

:func:`train_runs` trains them: with ``jobs=1`` in this process, one after another in the plan's order
(as ``qpe study`` always did); with ``jobs=N`` each run in a fresh spawned process, at most N at once,
every run starting as soon as the runs it needs have finished. A run that fails lets the runs already
started finish (their checkpoints are kept), starts nothing more, and stops the study with one line
naming it. A run already trained is found so by :func:`qpe.training.train` (it logs "already trained")
and an interrupted one resumes, whatever ``jobs`` is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING

from qpe.errors import InputError, QpeError, TrainingError

if TYPE_CHECKING:  # the plan imports torch; the ordering below does not need it
    from qpe.study.plan import TrainingRun

Needs = Mapping[str, Collection[str]]


# -- the order (pure) -----------------------------------------------------------------------------------
def training_needs(runs: Sequence[TrainingRun]) -> dict[str, tuple[str, ...]]:
    """The names of the runs each run needs: those whose folder is its ``base_checkpoint`` or one of its
    ``cross_fit`` folds. A checkpoint that no run of the study writes (trained elsewhere) is no need."""
    by_folder = {Path(run.out): run.config.name for run in runs}
    return {
        run.config.name: tuple(by_folder[Path(path)] for path in (run.config.base_checkpoint, *run.config.cross_fit)
                               if path is not None and Path(path) in by_folder)
        for run in runs
    }


def training_waves(needs: Needs) -> list[list[str]]:
    """The runs in waves: each wave's runs need only runs of earlier waves (plan order within a wave).

    Parameters
    ----------
    needs : mapping of str to collection of str
        Run name -> names of the runs it needs.

    Returns
    -------
    list of list of str
        The first wave needs nothing; together the waves hold every run once.

    Raises
    ------
    InputError
        A run needs a run that is not in ``needs``, or runs need each other (a cycle, named).
    """
    unknown = [f"{name} needs {need}" for name, wanted in needs.items() for need in wanted if need not in needs]
    if unknown:
        raise InputError(f"study training: {'; '.join(unknown)}, which is not a run of the study")
    waves: list[list[str]] = []
    done: set[str] = set()
    while len(done) < len(needs):
        wave = [name for name in needs if name not in done and set(needs[name]) <= done]
        if not wave:
            raise InputError(f"study training: runs need each other ({' -> '.join(_cycle(needs, done))})")
        waves.append(wave)
        done.update(wave)
    return waves


def _cycle(needs: Needs, done: Collection[str]) -> list[str]:
    """One cycle among the runs not in ``done`` (every one of them needs another of them), closed."""
    path = [next(name for name in needs if name not in done)]
    while True:
        path.append(next(need for need in needs[path[-1]] if need not in done))
        if path[-1] in path[:-1]:
            return path[path.index(path[-1]):]


def ready_runs(needs: Needs, finished: Collection[str], started: Collection[str]) -> list[str]:
    """The runs not started whose needs have all finished, in the order of ``needs`` (the plan's)."""
    return [name for name, wanted in needs.items()
            if name not in started and all(need in finished for need in wanted)]


# -- training -------------------------------------------------------------------------------------------
def train_runs(
    runs: Sequence[TrainingRun],
    *,
    jobs: int = 1,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """Train, resume or find trained every run, each after the runs it needs.

    Parameters
    ----------
    runs : sequence of TrainingRun
        The study's runs (:func:`qpe.study.plan.training_runs`), bases before the runs that need them.
    jobs : int
        Runs trained at once. 1: in this process, one after another. N > 1: each run in its own spawned
        process (torch and fork do not mix), with ``cpu_count // N`` torch threads unless
        ``OMP_NUM_THREADS`` is set; their lines come back here prefixed ``[<run>]`` (no progress bars).
        On a GPU they share the device of their training config.
    progress : bool
        Progress bars (``jobs=1`` only).
    log : callable
        Receives one line when a run starts and when it ends, and every line of the training.

    Returns
    -------
    dict of str to float
        Wall time (s) of every run, by name.

    Raises
    ------
    QpeError
        A run failed: its own error's class, its message naming the run and the runs left untrained,
        raised once the runs already started have finished. :class:`~qpe.errors.TrainingError` for a
        failure that is no :class:`~qpe.errors.QpeError` in a worker (its traceback is logged first);
        with ``jobs=1`` such an error propagates as it is.
    """
    if jobs < 1:
        raise InputError(f"jobs (models trained at once) must be at least 1, got {jobs}")
    needs = training_needs(runs)
    training_waves(needs)  # unknown needs and cycles, before anything trains
    by_name = {run.config.name: run for run in runs}
    if jobs == 1:
        return _train_here(by_name, needs, progress, log)
    return _train_in_processes(by_name, needs, jobs, log)


def _train_one(run: TrainingRun, progress: bool, log: Callable[[str], None]) -> None:
    from qpe.training import state_dir, train
    from qpe.training.state import has_state

    train(run.config, out=run.out, resume=has_state(state_dir(run.out)), progress=progress, log=log)


def _starting(run: TrainingRun, number: int, total: int) -> str:
    return f"[study] training {number}/{total}: {run.config.name} ({run.config.optim.steps} steps)"


def _stopped(name: str, err: BaseException, needs: Needs, finished: Collection[str],
             failed: Collection[str]) -> str:
    """The one line of a study stopped by the failure of ``name`` (and of ``failed``, if others)."""
    others = [other for other in failed if other != name]
    untrained = [run for run in needs if run not in finished and run not in failed]
    notes = ([f"also failed: {', '.join(others)}"] if others else []) + (
        [f"not trained: {', '.join(untrained)}"] if untrained else [])
    return f"training {name} failed: {err}" + (f" ({'; '.join(notes)})" if notes else "")


def _train_here(by_name: dict[str, TrainingRun], needs: Needs, progress: bool,
                log: Callable[[str], None]) -> dict[str, float]:
    """``jobs=1``: every run in this process, in the plan's order."""
    seconds: dict[str, float] = {}
    while ready := ready_runs(needs, seconds, seconds):
        name = ready[0]
        log(_starting(by_name[name], len(seconds) + 1, len(needs)))
        start = time.perf_counter()
        try:
            _train_one(by_name[name], progress, log)
        except QpeError as err:
            raise type(err)(_stopped(name, err, needs, seconds, [name])) from err
        seconds[name] = time.perf_counter() - start
        log(f"[study] {name} done in {seconds[name]:.0f} s")
    return seconds


def _train_in_worker(run: TrainingRun, threads: int, messages: Connection) -> None:
    """A worker process: train ``run``, sending ``(kind, payload)`` pairs through ``messages``: ``log``
    lines, then ``done`` or ``failed`` (with the error)."""
    _end_with_parent()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # ended like Ctrl-C: cleaned up
    try:
        import torch

        if "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(threads)
        _train_one(run, False, lambda line: messages.send(("log", line)))
    except QpeError as err:
        messages.send(("failed", err))
    except Exception as err:  # noqa: BLE001 -- a bug or the machine: traceback to the log, one line up
        for line in traceback.format_exc().rstrip().splitlines():
            messages.send(("log", line))
        messages.send(("failed", TrainingError(f"{type(err).__name__}: {err}")))
    else:
        messages.send(("done", None))
    finally:
        messages.close()


def _end_with_parent() -> None:
    """This worker ends as soon as the study process does, however it ended (Ctrl-C is handled there, a
    ``kill`` or a crash is not): no worker trains on alone. Its state is written atomically (safe)."""
    import multiprocessing

    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=lambda: (wait([parent.sentinel]), os._exit(1)), daemon=True,
                         name="end-with-parent").start()


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Processes started inside ignore Ctrl-C: this process alone handles it (and ends them)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _train_in_processes(by_name: dict[str, TrainingRun], needs: Needs, jobs: int,
                        log: Callable[[str], None]) -> dict[str, float]:
    """``jobs > 1``: every run in its own spawned process, at most ``jobs`` at once."""
    import multiprocessing

    from qpe.data.catalog import resolve_data

    # Catalog datasets are built here, once, so that two workers never build the same one at once; a
    # dataset that cannot be had fails again, named, in the run that needs it.
    for data in dict.fromkeys(run.config.data for run in by_name.values()):
        with contextlib.suppress(QpeError):
            resolve_data(data)

    context = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // jobs)
    running: dict[str, _Worker] = {}
    seconds: dict[str, float] = {}
    failed: dict[str, QpeError] = {}
    try:
        while True:
            if not failed:
                started = {*seconds, *running}
                for name in ready_runs(needs, seconds, started)[: jobs - len(running)]:
                    log(_starting(by_name[name], len(started) + 1, len(needs)))
                    running[name] = _Worker.start(context, by_name[name], threads)
                    started.add(name)
            if not running:
                break
            heard = wait([worker.messages for worker in running.values()])
            for name in [name for name, worker in running.items() if worker.messages in heard]:
                worker = running[name]
                kind, payload = worker.receive()
                if kind == "log":
                    log(f"[{name}] {payload}")
                    continue
                elapsed = worker.end()
                del running[name]
                if kind == "done":
                    seconds[name] = elapsed
                    log(f"[study] {name} done in {elapsed:.0f} s")
                else:
                    failed[name] = payload
                    log(f"[study] {name} failed after {elapsed:.0f} s"
                        + (f"; waiting for {', '.join(running)}" if running else ""))
    finally:
        for worker in running.values():  # Ctrl-C or an error here: no worker outlives the study
            worker.stop()
    if failed:
        name, err = next(iter(failed.items()))
        raise type(err)(_stopped(name, err, needs, seconds, failed))
    return seconds


class _Worker:
    """The process training one run, and the end of the pipe its lines and its outcome come through."""

    def __init__(self, process: BaseProcess, messages: Connection) -> None:
        self.process, self.messages, self.started = process, messages, time.perf_counter()

    @classmethod
    def start(cls, context, run: TrainingRun, threads: int) -> _Worker:
        messages, sender = context.Pipe(duplex=False)
        process = context.Process(target=_train_in_worker, args=(run, threads, sender),
                                  name=f"qpe-train-{run.config.name}")
        with _sigint_ignored():
            process.start()
        sender.close()  # the worker holds the only sending end: its exit is the end of the pipe
        return cls(process, messages)

    def receive(self) -> tuple[str, object]:
        """The next ``(kind, payload)``; a worker gone without an outcome (killed) is a ``failed``."""
        try:
            return self.messages.recv()
        except EOFError:
            self.process.join()
            code = self.process.exitcode
            how = f"was killed ({signal.Signals(-code).name})" if code < 0 else f"exited with code {code}"
            return "failed", TrainingError(f"its process {how} before it reported")

    def end(self) -> float:
        """Wait for the process to exit; its wall time (s)."""
        self.process.join()
        self.messages.close()
        return time.perf_counter() - self.started

    def stop(self) -> None:
        """End the process now (SIGTERM, then SIGKILL after 10 s)."""
        self.process.terminate()
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.messages.close()
