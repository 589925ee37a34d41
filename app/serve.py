"""Serving: the page and the API on one port, wired to the serving queue and the running model, until Ctrl-C."""

from __future__ import annotations

import signal
import threading
import time
from argparse import Namespace

from capabilities import MachineProfile
from models import measured_file as saved
from models.catalog import Artifact
from models.errors import AppError
from models.settings import Settings
from models.startup import Loaded
from webui import views

from .console import step
from .running import Context, RunningModel
from .serving import ServingQueue


def page_info(profile: MachineProfile, loaded: Loaded, join_url: str = ""):
    from webui.page import PageInfo

    return PageInfo(title="Phi-3 on this PC", running=loaded.summary(), notices=tuple(loaded.notices),
                    machine_rows=views.machine_rows(profile), devices=views.device_rows(profile),
                    explanation=views.explain_markdown(loaded.ranking, running=loaded.candidate), join_url=join_url)


def _web_app(args: Namespace, running: RunningModel, info, access, host: str, port: int, addresses: list[str],
             bench):
    """The page and the API as one ASGI app, with the guard, the session binding and the body limit around it."""
    from fastapi import Depends

    from webui import api, body
    from webui.access_log import AccessLog
    from webui.cors import ApiCors
    from webui.page import build_page, launch_kwargs
    from webui.security import GradioSessions, Guard, machine_hosts
    from webui.server import web_app
    from webui.sessions import SessionBinding

    blocks = build_page(running.queue, info, running, access, bench)
    blocks.queue(default_concurrency_limit=1, api_open=False)
    routers = [api.router(running.queue, lambda: running.current().artifact.id, running.catalog_ids,
                          dependencies=[Depends(access.api_dependency)],
                          tool_format=lambda: running.current().artifact.tool_format)]
    sessions = GradioSessions()
    # The last one added runs first: one size limit for every body (nothing reads more, the guard's own login
    # form included); an API body read as JSON whatever its Content-Type; then the guard; then each Gradio session
    # id and answer is bound to the browser that started it (webui/sessions.py).
    origins = frozenset(args.allow_origin)
    hosts = machine_hosts(host, access.lan, addresses) | frozenset(args.allow_host)
    middleware = [(SessionBinding, {"handlers": lambda: set(blocks.fns)}),
                  *([(ApiCors, {"origins": origins})] if origins else []),
                  (Guard, {"access": access, "hosts": hosts, "port": port, "sessions": sessions,
                           "origins": origins}),
                  (body.JsonBodies, {}), (body.BodyLimit, {"max_bytes": args.max_request_bytes})]
    if args.access_log:  # outermost: it sees every answer, refusals included
        middleware.append((AccessLog, {"write": lambda text, seconds: step("request", seconds, text)}))
    web = web_app(blocks, routers=routers, middleware=middleware, auth=access.check if access.lan else None,
                  **launch_kwargs())
    sessions.attach(web)
    api.install_error_handlers(web)
    return web


def _say_where(url: str, access, network_urls: list[str], shown: tuple[str, ...]) -> None:
    from webui.server import qr_console

    if access.lan:
        for network_url in network_urls:
            print(f"         on the network: {network_url}")
        if network_urls:
            print(f"         scan to open {network_urls[0]} on a phone:\n{qr_console(network_urls[0])}", end="")
        print("         every request needs credentials: a login for the page, a Bearer key for the API")
        for line in shown:  # generated password and key: here once, nowhere else
            print(line)


def _until_stopped() -> None:
    stop = threading.Event()
    # Ctrl-C even when started from a shell that ignores SIGINT for background jobs; SIGTERM (a service
    # manager, `kill`) ends the app the same clean way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


def serve(args: Namespace, profile: MachineProfile, loaded: Loaded, settings: Settings,
          catalog: tuple[Artifact, ...], access, shown: tuple[str, ...] = ()) -> int:
    """`access` (webui/auth.py) says who may do what; `shown` are the lines printed once (generated secrets)."""
    from webui.bench_tab import BenchTab
    from webui.server import free_port, has_display, lan_addresses, open_browser
    from webui.server import start as start_server

    t = time.perf_counter()
    host = "0.0.0.0" if args.lan else args.host
    port = free_port(host, args.port)
    if port != args.port:
        print(f"note: port {args.port} is taken; using {port}")
    context = Context(profile, catalog, settings, recorded=bool(args.probe_file), log=step,
                      measured=lambda: saved.load(settings, profile))  # read anew: a --bench run since counts
    running = RunningModel(loaded, ServingQueue(loaded.engine, max_queue=args.max_queue), context)
    addresses = (lan_addresses() if host in ("0.0.0.0", "::") else [host]) if access.lan else []
    network_urls = [f"http://{a}:{port}" for a in addresses]
    bench = BenchTab(settings.home)  # the Benchmark tab's one run at a time; ended below when the app exits
    try:
        web = _web_app(args, running, page_info(profile, loaded, network_urls[0] if network_urls else ""), access,
                       host, port, addresses, bench)
        server = start_server(web, host, port)
    except OSError as err:  # taken by another program between the check and the bind
        running.close()
        raise AppError(f"port {port} on {host} could not be opened ({err.strerror or err}); start again, "
                       "or pass --port") from err
    step("ready", time.perf_counter() - t, server.url)
    _say_where(server.url, access, network_urls, shown)
    if not args.no_browser and has_display():
        open_browser(server.url)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        _until_stopped()
    finally:
        print("\nStopping ...", flush=True)
        bench.close()  # a benchmark still running ends with the app
        server.close()
        running.close()  # the engine running now, which a switch may have changed
    return 0


__all__ = ["page_info", "serve"]
