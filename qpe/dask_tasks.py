"""Running independent tasks on Dask: local threads by default, a ``distributed`` cluster when given one.

What ``--scheduler ADDRESS`` means for every command that takes it (``qpe data build``; the same rule as
``qpe evaluate``): None runs the tasks on the local threaded scheduler, an address such as
``tcp://10.0.0.5:8786`` (or a :class:`distributed.Client`) on that cluster, whose workers must see the
same paths. A progress bar counts finished tasks.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tqdm.auto import tqdm

from qpe.errors import InputError

#: Seconds to wait for a distributed scheduler before giving up with one error line.
CONNECT_TIMEOUT = "20s"


@contextlib.contextmanager
def scheduler_client(scheduler) -> Iterator[Any]:
    """A :class:`distributed.Client` for an address (closed on exit), or the client given.

    Raises
    ------
    InputError
        The scheduler cannot be reached (one line naming the address).
    """
    from distributed import Client

    if isinstance(scheduler, Client):
        yield scheduler
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as err:
        raise InputError(f"cannot reach the Dask scheduler at {scheduler} ({err})".replace("\n", " ")) from err
    try:
        yield client
    finally:
        client.close()


def compute_tasks(
    func: Callable[..., Any],
    task_args: Sequence[tuple],
    *,
    scheduler=None,
    workers: int | None = None,
    progress: bool = False,
    desc: str = "tasks",
    unit: str = "task",
    on_result: Callable[[Any], None] | None = None,
) -> list[Any]:
    """``[func(*args) for args in task_args]`` computed in parallel on Dask, results in task order.

    Parameters
    ----------
    func : callable
        The task; with a cluster it must be importable by the workers (a module-level function).
    task_args : sequence of tuple
        Arguments of each task.
    scheduler : str or distributed.Client, optional
        A cluster; the local threaded scheduler when None.
    workers : int, optional
        Threads of the local scheduler (default: the CPU count, at most one per task).
    progress : bool
        Show a bar over finished tasks.
    on_result : callable, optional
        Called with each result as it arrives (in this process; from a worker thread when local).
    """
    import dask

    if not task_args:
        return []
    bar = tqdm(total=len(task_args), desc=desc, unit=unit, disable=not progress)
    try:
        if scheduler is None:
            lock = threading.Lock()

            def run(*args):
                result = func(*args)
                with lock:
                    bar.update()
                    if on_result is not None:
                        on_result(result)
                return result

            tasks = [dask.delayed(run, pure=False)(*args) for args in task_args]
            threads = workers or min(len(tasks), os.cpu_count() or 1)
            return list(dask.compute(*tasks, scheduler="threads", num_workers=threads))
        from distributed import as_completed

        with scheduler_client(scheduler) as client:
            futures = client.compute([dask.delayed(func, pure=False)(*args) for args in task_args])
            for future in as_completed(futures, loop=client.loop):
                bar.update()
                if on_result is not None:
                    on_result(future.result())
            return client.gather(futures)
    finally:
        bar.close()
