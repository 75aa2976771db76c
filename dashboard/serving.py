"""How the dashboard is served: the interface it listens on, the port, and the Host check.

By default the server listens on the loopback interface only and answers only requests addressed to
``localhost:<port>`` or ``127.0.0.1:<port>``. The Host check defends against DNS rebinding: a page of
``evil.example`` whose name is made to resolve to 127.0.0.1 sends ``Host: evil.example:<port>`` (and a
matching ``Origin``), which Bokeh's websocket origin check alone does not stop for the page itself.
Every request (page, static files, websocket upgrade) whose ``Host`` is not in the allow-list is
answered ``403`` before Bokeh or Panel see it. Names users type to reach a shared server are added
with ``--allow-websocket-origin NAME[:PORT]``, which also sets Bokeh's websocket origin allow-list, so
the two lists are always the same.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Sequence

from bokeh.server.util import check_allowlist, create_hosts_allowlist
from tornado.httputil import HTTPServerRequest
from tornado.routing import Matcher, Rule
from tornado.web import Application, RequestHandler
from tornado.websocket import WebSocketClosedError

from qpe.errors import InputError

log = logging.getLogger("dashboard")

#: Interface the dashboard listens on unless told otherwise.
LOOPBACK = "127.0.0.1"
#: Host names always allowed (the machine itself), each with the server's port.
LOOPBACK_NAMES = ("localhost", "127.0.0.1")
#: Valid TCP ports.
PORTS = range(1, 65536)


def check_port(port: int) -> int:
    """``port`` if it is a TCP port (1..65535).

    Raises
    ------
    InputError
        Any other number.
    """
    if port not in PORTS:
        raise InputError(f"--port {port} is not a TCP port: use a number from 1 to 65535 (default 5006)")
    return port


def allowed_hosts(port: int, names: Sequence[str] = ()) -> list[str]:
    """The ``host:port`` names the server answers: the loopback names and ``names``.

    Parameters
    ----------
    port : int
        The server's port, added to the loopback names.
    names : sequence of str
        ``NAME`` or ``NAME:PORT`` (port 80 when absent, as a browser sends it); ``*`` wildcards as in
        Bokeh's ``--allow-websocket-origin``.

    Raises
    ------
    InputError
        A name is empty or its port is not a number.
    """
    try:
        extra = create_hosts_allowlist(list(names), port) if names else []
    except ValueError as err:
        raise InputError(f"--allow-websocket-origin: {err}") from None
    loopback = [f"{name}:{port}" for name in LOOPBACK_NAMES]
    return loopback + [name for name in extra if name not in loopback]


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """Whether a request's ``Host`` header (``name[:port]``, any case) is in ``allowed``."""
    return bool(host) and check_allowlist(host.lower(), allowed)


class RefusedHost(Matcher):
    """Matches the requests whose ``Host`` is not in ``allowed`` (tornado routing rule)."""

    def __init__(self, allowed: Sequence[str]) -> None:
        self.allowed = list(allowed)

    def match(self, request: HTTPServerRequest) -> dict | None:
        return None if host_allowed(request.host, self.allowed) else {}


class RefusedHostHandler(RequestHandler):
    """Answers ``403 Forbidden`` (plain text, nothing of the app) to any method, websocket included."""

    def prepare(self) -> None:
        log.warning("refused a request for Host %r (not an allowed name of this dashboard)", self.request.host)
        self.set_status(403)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish("403: this dashboard is not served under this host name. Its owner can allow the name "
                    "with qpe dashboard --allow-websocket-origin NAME:PORT.\n")


def refuse_other_hosts(application: Application, allowed: Sequence[str]) -> None:
    """Route every request of ``application`` whose Host is not in ``allowed`` to a 403, before any route.

    Parameters
    ----------
    application : tornado.web.Application
        The server's application (Bokeh's ``BokehTornado``).
    allowed : sequence of str
        ``host:port`` names, as :func:`allowed_hosts` gives them.
    """
    application.default_router.rules.insert(0, Rule(RefusedHost(allowed), RefusedHostHandler))


def listen_error(address: str, port: int, err: OSError) -> InputError:
    """One line saying why the server cannot listen on ``address:port``."""
    if err.errno == errno.EADDRINUSE:
        return InputError(f"port {port} is already in use on {address} (another dashboard?): "
                          "choose another with --port")
    if err.errno == errno.EACCES:
        return InputError(f"not allowed to listen on {address}:{port} (ports below 1024 need privileges): "
                          "choose another with --port")
    reason = err.strerror or str(err) or type(err).__name__
    return InputError(f"cannot listen on {address}:{port}: {reason} (check --address and --port)")


def check_can_listen(address: str, port: int) -> None:
    """Fail now, with one line, when ``address:port`` cannot be listened on (bound and released at once).

    The server binds again when it starts (a port taken in between still fails there with the same
    line); checking first spares the seconds of importing the app for a typing error.

    Raises
    ------
    InputError
        The address does not resolve to an interface of this machine, the port is in use, or it needs
        privileges (see :func:`listen_error`).
    """
    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise InputError(f"cannot listen on {address}:{port}: {err.strerror} (check --address)") from None
    family, kind, proto, _, where = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as tornado does: TIME_WAIT is no error
        try:
            probe.bind(where)
        except OSError as err:
            raise listen_error(address, port, err) from None


def check_server_options(address: str, port: int, names: Sequence[str] = ()) -> list[str]:
    """Every server option checked before anything heavy is imported; the allowed ``host:port`` names.

    Parameters
    ----------
    address : str
        Interface to listen on.
    port : int
        HTTP port.
    names : sequence of str
        ``--allow-websocket-origin`` names (see :func:`allowed_hosts`).

    Raises
    ------
    InputError
        A bad port, host name or address, or a port that cannot be listened on.
    """
    hosts = allowed_hosts(check_port(port), names)
    check_can_listen(address, port)
    return hosts


def _closed_tab_handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """Loop exception handler: a write to a tab closed meanwhile is one line, anything else the default."""
    if isinstance(context.get("exception"), WebSocketClosedError):
        log.info("a browser tab closed before an update reached it (nothing lost)")
        return
    loop.default_exception_handler(context)


def quiet_closed_tabs(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Log writes to closed tabs as one line instead of a traceback on the server's loop.

    Panel queues the websocket writes of a session's updates and awaits them on the next tick; when
    the tab closes and the session is discarded in between (an estimate finishing after its tab
    closed), tornado's write futures fail with ``WebSocketClosedError`` that nobody retrieves, and
    asyncio prints "Task exception was never retrieved" with two tracebacks. Idempotent.

    Parameters
    ----------
    loop : asyncio event loop, optional
        The server's loop (default: the running one; nothing to do when none runs, as when a test
        builds the page directly).
    """
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
    if loop.get_exception_handler() is not _closed_tab_handler:
        loop.set_exception_handler(_closed_tab_handler)
