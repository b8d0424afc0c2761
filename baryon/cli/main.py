"""``baryon``: the command line. ``baryon server`` runs the API; ``baryon db upgrade`` migrates."""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import socket
import sys

from baryon import config
from baryon.cli import agent as agent_cli, debug as debug_cli, demo as demo_cli, lab as lab_cli

LOG = logging.getLogger("baryon")


def _load(files: list[str]) -> config.Settings:
    try:
        settings = config.load(files)
    except config.ConfigError as exc:
        sys.exit(f"baryon: configuration error: {exc}")
    for warning in settings.warnings:
        LOG.warning("%s", warning)
    for unsupported in config.loader.unsupported_types(settings):
        LOG.warning("[ml2] type_drivers: %r networks are not supported by Baryon and are ignored", unsupported)
    return settings


def _database(settings: config.Settings):  # noqa: ANN202
    from baryon.db.engine import Database

    return Database(settings.database_url, pool_size=settings.database.max_pool_size,
                    max_overflow=settings.database.max_overflow, pool_timeout=settings.database.pool_timeout)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    _upgrade(_load(args.config_file))
    return 0


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sys.exit(f"baryon: cannot listen on {host}:{port}: {exc.strerror}")
    return sock


def _upgrade(settings: config.Settings) -> None:
    from baryon.db import migrate

    db = _database(settings)
    migrate.upgrade(db)
    LOG.info("database %s at revision %s", db.url.render_as_string(hide_password=True), migrate.current(db))
    db.dispose()


def _upgrade_in_child(settings: config.Settings) -> None:
    """Migrate in a forked child. The supervisor of several API workers (spawned afresh, they
    share nothing with it) then never imports SQLAlchemy, Alembic nor the application: it stays
    at about 30 MiB, where it kept 77 MiB of modules it never used again."""
    child = multiprocessing.get_context("fork").Process(target=_upgrade, args=(settings,), name="baryon-db-upgrade")
    child.start()
    child.join()
    if child.exitcode != 0:
        sys.exit(f"baryon: the database migration failed (exit code {child.exitcode})")


def cmd_server(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _load(args.config_file)
    workers = settings.DEFAULT.api_workers
    if workers is None:
        workers = os.cpu_count() or 1
    workers = max(1, workers)
    if workers > 1 and not args.listen_fd:
        _upgrade_in_child(settings)
    else:
        _upgrade(settings)
    host, port = settings.DEFAULT.bind_host, settings.DEFAULT.bind_port
    LOG.info("Baryon API on http://%s:%d (%d worker%s)", host, port, workers, "s" if workers > 1 else "")
    common = dict(host=host, port=port, log_level="warning", access_log=False, lifespan="on",
                  timeout_keep_alive=30, loop="auto", http="auto")
    if args.listen_fd:
        # Sockets handed over by a supervisor (the lab passes a listener it opened on the machine's
        # loopback): served beside bind_host:bind_port, in one worker.
        if workers != 1:
            sys.exit("baryon: --listen-fd needs api_workers = 1")
        from baryon.api import app as api_app

        listeners = [_bound_socket(host, port), *(socket.socket(fileno=fd) for fd in args.listen_fd)]
        server = uvicorn.Server(uvicorn.Config(api_app.create_app(settings), **common))  # type: ignore[arg-type]
        server.run(sockets=listeners)
    elif workers == 1:
        from baryon.api import app as api_app

        uvicorn.run(api_app.create_app(settings), **common)  # type: ignore[arg-type]
    else:
        from baryon.api import metrics as api_metrics, siblings

        os.environ[config.FILES_ENV] = os.pathsep.join(os.path.abspath(f) for f in args.config_file)
        # The workers' metrics add up in files of a private directory (api.metrics); they tell
        # each other of their commits through sockets in another (api.siblings).
        with api_metrics.multiprocess_dir(), siblings.directory():
            uvicorn.run("baryon.api.app:worker_app", factory=True, workers=workers, **common)  # type: ignore[arg-type]
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="baryon", description="Neutron's networking (ML2/OVS) as one package")
    sub = top.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config-file", action="append", default=[], metavar="FILE",
                       help="a Neutron-format INI file; repeat it, later files override earlier ones")
        return p

    server = with_config(sub.add_parser("server", help="run the Networking API v2.0 server"))
    server.add_argument("--listen-fd", type=int, action="append", default=[], metavar="FD",
                        help="also serve on this inherited listening socket (for supervisors such as the lab)")
    server.set_defaults(func=cmd_server)
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = with_config(db_sub.add_parser("upgrade", help="migrate the database schema to the latest revision"))
    upgrade.set_defaults(func=cmd_db_upgrade)
    agent_cli.add_parser(sub)
    lab_cli.add_parser(sub)
    demo_cli.add_parser(sub)
    debug_cli.add_parser(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args = parser().parse_args(argv)
    if args.command == "lab":
        return lab_cli.run(args)
    if args.command == "debug":
        return debug_cli.run(args)
    if args.command == "demo":
        return demo_cli.run(args)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
