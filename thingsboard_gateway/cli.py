"""`thingsboard-gateway [run] [--config PATH] | check | storage inspect|verify|repair | version`.

With no subcommand it runs the gateway, as upstream's does. Configuration errors are
printed as one line (file: JSON path: what was expected) and exit with code 2.
"""
import argparse
import logging
import os
import signal
import sys
from typing import Any, List, Optional

from thingsboard_gateway import __version__
from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.loader import default_config_path, load_gateway_config
from thingsboard_gateway.connectors.connector import Connector
from thingsboard_gateway.connectors.registry import ExtensionError, connector_class, validate_connector_files

EXIT_CONFIG = 2
COMMANDS = ("run", "check", "storage", "version")


def _parser():
    parser = argparse.ArgumentParser(prog="thingsboard-gateway", description="ThingsBoard IoT Gateway")
    sub = parser.add_subparsers(dest="command")
    for name, text in (("run", "run the gateway (the default)"),
                       ("check", "validate the configuration and print a summary; with --connector, "
                                 "dry-run a converter on a recorded message")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--config", "-c", help="path of tb_gateway.json (default: $TB_GW_CONFIG_DIR/"
                                              "tb_gateway.json, else /etc/thingsboard-gateway/config/tb_gateway.json)")
        if name == "check":
            p.add_argument("--connector", help="a connector file (e.g. mqtt.json) to dry-run")
            p.add_argument("--topic", help="the topic the sample arrived on")
            p.add_argument("--sample", help="file holding the message payload")
    p = sub.add_parser("storage", help="inspect, verify or repair durable storage (gateway stopped)")
    p.add_argument("action", choices=["inspect", "verify", "repair"])
    p.add_argument("--config", "-c", help="path of tb_gateway.json")
    sub.add_parser("version", help="print the version")
    return parser


def main(argv=None):
    # type: (Optional[List[str]]) -> int
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "run")
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(__version__)
        return 0
    if args.command == "check":
        if args.connector:
            from thingsboard_gateway.connectors.dry_run import dry_run
            return dry_run(args.connector, args.topic, args.sample)
        return check(default_config_path(args.config))
    if args.command == "storage":
        return storage(args.action, default_config_path(args.config))
    return run(default_config_path(args.config))


def _fail(error):
    # type: (Any) -> int
    sys.stderr.write("error: %s\n" % error)
    return EXIT_CONFIG


def _describe_connector(spec, warnings):
    # type: (Any, List[str]) -> str
    cls = connector_class(spec.type, spec.class_name)
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ExtensionError("%s is not a subclass of thingsboard_gateway.connectors.connector.Connector"
                             % (spec.class_name or spec.type))
    reason = cls.unavailable(spec.config)
    if reason:
        warnings.append("%s: %s" % (spec.file, reason))
    return cls.describe_config(spec.config)


def _describe_reporting(tb, rules):
    # type: (Any, Any) -> str
    strategy = tb["reportStrategy"]
    text = str(strategy.get("type", "ON_RECEIVED")).upper()
    if text not in ("ON_RECEIVED", "ON_CHANGE"):
        text += " every %d ms" % strategy.get("reportPeriod", 10000)
    if rules is None:
        return text + ", no device filtering"
    return text + ", device filtering: %d deny pattern(s)" % sum(len(p) for p in rules["deny"].values())


def _describe_security(config):
    # type: (Any) -> str
    from thingsboard_gateway.config.provisioning import describe
    tb = config.thingsboard
    if config.credentials == "provisioning":
        return "none yet: %s" % describe(tb["provisioning"])
    if config.credentials == "saved":
        return "%s (saved by provisioning in %s)" % (tb["security"]["type"], config.credentials_path)
    return tb["security"]["type"]


def _provision(config, stopped):
    # type: (Any, Any) -> bool
    """No credentials yet: ThingsBoard's device provisioning until it answers (True) or
    SIGTERM (False). systemd is told we are up (a first boot may wait long) and its
    watchdog is fed meanwhile."""
    from thingsboard_gateway.gateway.systemd import SystemdNotifier
    from thingsboard_gateway.platform.provisioning import Provisioner
    notifier = SystemdNotifier()
    notifier.notify("READY=1\nSTATUS=provisioning")
    security = Provisioner(config.thingsboard, config.credentials_path, stopped,
                           beat=lambda: notifier.notify("WATCHDOG=1")).run()
    if security is None:
        return False
    config.thingsboard["security"] = security
    config.credentials = "saved"
    return True


def check(path):
    # type: (str) -> int
    """Validate the main file and every connector file; print a summary without secrets."""
    try:
        config = validate_connector_files(load_gateway_config(path))
    except ConfigError as e:
        return _fail(e)
    tb = config.thingsboard
    lines = ["Configuration OK: %s" % path,
             "  platform:   %s:%d (qos %d)" % (tb["host"], tb["port"], tb["qos"]),
             "  security:   %s" % _describe_security(config),
             "  storage:    %s" % config.storage["type"],
             "  reporting:  %s" % _describe_reporting(tb, config.device_filter),
             "  connectors: %d" % len(config.connectors)]
    problems = 0
    for spec in config.connectors:
        try:
            summary = _describe_connector(spec, config.warnings)
        except ExtensionError as e:
            summary = "ERROR: %s" % e
            problems += 1
        except ConfigError as e:
            summary = "ERROR: %s" % e
            problems += 1
        kind = spec.type + (", class " + spec.class_name if spec.class_name else "")
        lines.append("    - %s (%s) %s: %s" % (spec.name, kind, spec.config_path, summary))
    for warning in config.warnings:
        lines.append("  warning: %s" % warning)
    print("\n".join(lines))
    return EXIT_CONFIG if problems else 0


def storage(action, path):
    # type: (str, str) -> int
    """inspect (backlog), verify (exit 1 on damage, changes nothing), repair."""
    from thingsboard_gateway.storage import admin
    try:
        config = load_gateway_config(path, load_connectors=False)
    except ConfigError as e:
        return _fail(e)
    code, lines = admin.run(action, config.storage)
    stream = sys.stderr if code == admin.EXIT_REFUSED else sys.stdout
    stream.write("\n".join(lines) + "\n")
    return code


def run(path):
    # type: (str) -> int
    """Load the configuration, set up logging and run until SIGTERM/SIGINT."""
    from thingsboard_gateway.runtime import lean_start
    lean_start.prepare()  # before paho is imported (runtime/lean_start.py)
    from thingsboard_gateway.config.logs import setup_logging
    from thingsboard_gateway.gateway.service import GatewayService
    from thingsboard_gateway.runtime import allocator

    allocator.share_one_arena()  # before any thread starts

    # Handlers first: a SIGTERM during start-up still ends in an orderly shutdown.
    requested = []  # signals received
    holder = []  # the service, once it exists

    def on_signal(signum, frame):
        requested.append(signum)
        logging.getLogger("thingsboard_gateway").info("Signal %d received, stopping", signum)
        for service in holder:
            service.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        config = validate_connector_files(load_gateway_config(path))
        used = setup_logging(config.folder)
        if _trial_without_guard(config):
            return 1  # (exec'd the guard; only reached when it could not be started)
        service = GatewayService(config) if config.credentials != "provisioning" else None
    except ConfigError as e:
        return _fail(e)
    log = logging.getLogger("thingsboard_gateway")
    log.info("Configuration %s, logging: %s", path, used)
    for warning in config.warnings:
        log.warning(warning)
    if service is None:
        if not _provision(config, lambda: bool(requested)):
            log.info("Stopped while provisioning")
            return 0
        service = GatewayService(config)
    holder.append(service)
    if hasattr(signal, "SIGHUP"):  # systemctl reload: check the connector files now
        signal.signal(signal.SIGHUP, lambda signum, frame: service.request_reload())
    if requested:
        service.request_stop()
    service.run()
    if service.update_requested and not requested:
        # A verified package from ThingsBoard: the update guard installs it (stopped in order).
        return _hand_over_to_guard(config, log)
    if service.restart_requested and not requested:
        # A remote change of the main file: start again on it, in this process (systemd
        # keeps the same main PID; the storage was flushed by the orderly shutdown).
        logging.shutdown()
        command = gateway_command()
        os.execv(command[0], command)
    _exit_past_stuck_threads(log)
    return 0


def gateway_command():
    # type: () -> List[str]
    """The command that started this gateway: to start it again (a restart, the update guard)."""
    program = sys.argv[0]
    if os.access(program, os.X_OK) and not program.endswith("__main__.py"):
        return list(sys.argv)  # /usr/bin/thingsboard-gateway, a venv's script
    return [sys.executable, "-m", "thingsboard_gateway"] + sys.argv[1:]


def _guard(config):
    # type: (Any) -> None
    """Replace this process with the update guard (same PID); returns only when it cannot."""
    from thingsboard_gateway import update_guard
    from thingsboard_gateway.config import update_state
    path = update_state.state_path(config.storage.get("data_folder_path"))
    logging.shutdown()
    try:
        os.execve(sys.executable, update_guard.guard_command(path, gateway_command()),
                  update_guard.guard_environment())
    except OSError as e:
        sys.stderr.write("error: the update guard could not start: %s\n" % e)


def _hand_over_to_guard(config, log):
    # type: (Any, logging.Logger) -> int
    from thingsboard_gateway.config import update_state
    if os.environ.get(update_state.GUARD_ENV):
        log.info("Stopped for the update: the update guard installs it")
        logging.shutdown()
        return update_state.EXIT_UPDATE  # our guard, the parent, starts afresh on it
    _guard(config)
    return 1


def _trial_without_guard(config):
    # type: (Any) -> bool
    """A trial of an update with no guard above it (the board rebooted during it): the guard
    takes it on, so that a version that does not connect is still rolled back."""
    from thingsboard_gateway.config import update_state
    if os.environ.get(update_state.GUARD_ENV) or not config.thingsboard["softwareUpdates"]["enabled"]:
        return False
    state = update_state.read(update_state.state_path(config.storage.get("data_folder_path")))
    if state.get("state") != update_state.TRIAL:
        return False
    logging.getLogger("thingsboard_gateway").warning("An update to %s was on trial: the update guard resumes it",
                                                     state.get("version"))
    _guard(config)
    return True


def _exit_past_stuck_threads(log, grace=2.0):
    # type: (logging.Logger, float) -> None
    """After the orderly shutdown (storage closed): a thread that is still stuck in a call
    that does not return (a connector the supervisor gave up on) would keep the
    interpreter from exiting; wait `grace` s for the others, then exit without it."""
    import threading
    import time
    deadline = time.monotonic() + grace
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon
             and t.is_alive()]
    if stuck:
        log.warning("Exiting with thread(s) still stuck: %s", ", ".join(stuck))
        logging.shutdown()
        os._exit(0)
