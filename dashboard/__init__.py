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
from collections.abc import Sequence
from pathlib import Path

from dashboard.serving import LOOPBACK


def serve(
    data: str | os.PathLike = "demo",
    models: str | os.PathLike | None = None,
    port: int = 5006,
    show: bool = True,
    cache_dir: str | os.PathLike | None = None,
    address: str = LOOPBACK,
    allow_websocket_origin: Sequence[str] = (),
) -> None:
    """Serve the dashboard until interrupted.

    Parameters
    ----------
    data : path-like or str
        Paired dataset, or a catalog name (``"demo"`` is built when missing).
    models : path-like, optional
        Folder searched for checkpoints (default ``<repository>/models``).
    port : int
        HTTP port (1..65535); the app is at ``http://localhost:<port>/``.
    show : bool
        Open a browser tab.
    cache_dir : path-like, optional
        Inference cache (default ``$QPE_CACHE_DIR`` or ``~/.cache/qpe/estimates``).
    address : str
        Interface to listen on (default: loopback only; ``0.0.0.0`` for every IPv4 interface).
    allow_websocket_origin : sequence of str
        Host names (``NAME`` or ``NAME:PORT``) under which users reach the server, besides
        ``localhost`` and ``127.0.0.1``; requests for any other name are refused with HTTP 403
        (see :mod:`dashboard.serving`).

    Raises
    ------
    QpeError
        A bad port or host name, the dataset cannot be found or opened, or the port cannot be
        listened on (before anything is served).
    """
    from dashboard.serving import check_server_options, listen_error, refuse_other_hosts

    hosts = check_server_options(address, port, allow_websocket_origin)  # before the seconds of imports

    import webbrowser

    import panel as pn

    from dashboard.app import build_app
    from dashboard.session import DEFAULT_MODELS, DashboardSettings, open_dataset

    settings = DashboardSettings(str(data), Path(models) if models else DEFAULT_MODELS,
                                 Path(cache_dir) if cache_dir else None)
    path, dataset = open_dataset(settings.data)  # fail here with one line, and warm the shared copy
    print(f"qpe dashboard: {path} ({dataset.sizes['time']} times), checkpoints under {settings.models}")
    try:
        server = pn.serve(lambda: build_app(settings), port=port, address=address, websocket_origin=hosts,
                          show=False, start=False, title="qpe dashboard")
    except OSError as err:
        raise listen_error(address, port, err) from None
    # Bokeh offers no public hook on its tornado application; Panel reads the same attribute
    refuse_other_hosts(server._tornado, hosts)
    print(f"listening on {address}:{port}, answering the host names {', '.join(hosts)}")
    if not allow_websocket_origin and address not in (LOOPBACK, "localhost", "::1"):
        print(f"note: other machines reach {address}:{port} only under a name given with "
              "--allow-websocket-origin NAME:PORT (requests for other names get HTTP 403)")
    url = f"http://localhost:{port}/"
    print(f"open {url}")
    if show:
        server.io_loop.add_callback(webbrowser.open, url)
    server.start()
    server.io_loop.start()
