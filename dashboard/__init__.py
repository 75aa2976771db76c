"""The qpe dashboard: a Panel app of small components over the library (it computes no score itself).

Modules: :mod:`~dashboard.state` (the case, mirrored in the URL by :mod:`~dashboard.sharing`),
:mod:`~dashboard.session` (settings, data, checkpoints, messages), :mod:`~dashboard.case_picker`,
:mod:`~dashboard.model_picker` (checkpoints, estimates on demand), :mod:`~dashboard.maps`,
:mod:`~dashboard.scores`, :mod:`~dashboard.ensemble`, :mod:`~dashboard.export`, wired by
:mod:`~dashboard.app`. Start it with ``qpe dashboard`` (:func:`serve`) or
``panel serve dashboard/app.py --args --data PATH --models DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path


def serve(
    data: str | os.PathLike = "demo",
    models: str | os.PathLike | None = None,
    port: int = 5006,
    show: bool = True,
    cache_dir: str | os.PathLike | None = None,
    address: str | None = None,
) -> None:
    """Serve the dashboard until interrupted.

    Parameters
    ----------
    data : path-like or str
        Paired dataset, or a catalog name (``"demo"`` is built when missing).
    models : path-like, optional
        Folder searched for checkpoints (default ``<repository>/models``).
    port : int
        HTTP port; the app is at ``http://localhost:<port>/``.
    show : bool
        Open a browser tab.
    cache_dir : path-like, optional
        Inference cache (default ``$QPE_CACHE_DIR`` or ``~/.cache/qpe/estimates``).
    address : str, optional
        Interface to listen on (default: all).

    Raises
    ------
    QpeError
        The dataset cannot be found or opened (before anything is served).
    """
    import panel as pn

    from dashboard.app import build_app
    from dashboard.session import DEFAULT_MODELS, DashboardSettings, open_dataset

    settings = DashboardSettings(str(data), Path(models) if models else DEFAULT_MODELS,
                                 Path(cache_dir) if cache_dir else None)
    path, dataset = open_dataset(settings.data)  # fail here with one line, and warm the shared copy
    print(f"qpe dashboard: {path} ({dataset.sizes['time']} times), checkpoints under {settings.models}")
    print(f"open http://localhost:{port}/")
    pn.serve(lambda: build_app(settings), port=port, address=address, show=show, title="qpe dashboard")
