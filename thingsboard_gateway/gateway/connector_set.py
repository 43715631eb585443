"""ConnectorSet: the one owner of the gateway's connectors, the list as configured and the
instances that run it (through the Supervisor, which restarts what fails).

Start-up, remote configuration (gateway/remote_config.py), hot reload and SIGHUP
(gateway/management.py) start, add, change and remove connectors only here; nobody else
changes the list. Every change is told to the listeners (the data policy's report
strategies and filter names, remote logging) before the changed connector starts, so that
its first value already meets them. Main thread, except by_name() and specs (any thread).
"""
import logging
from typing import Any, Callable, List, Optional, Sequence

from thingsboard_gateway.config.loader import ConnectorSpec
from thingsboard_gateway.gateway.supervisor import Supervisor

log = logging.getLogger(__name__)

Listener = Callable[[Sequence[ConnectorSpec]], None]


class ConnectorSet(object):
    """specs: the connectors of tb_gateway.json. gateway: the GatewayApi they get.
    settings: the `supervision` section. on_attention(): the main loop's wake-up."""

    def __init__(self, specs, gateway, settings, on_attention, supervisor=Supervisor):
        # type: (Sequence[ConnectorSpec], Any, Any, Callable[[], None], Callable[..., Supervisor]) -> None
        self._specs = tuple(specs)
        self.supervisor = supervisor(list(specs), gateway, settings, on_attention=on_attention)
        self._listeners = []  # type: List[Listener]

    @property
    def specs(self):
        # type: () -> Sequence[ConnectorSpec]
        """The connectors as configured now, in order (an immutable snapshot)."""
        return self._specs

    def spec(self, name):
        # type: (str) -> Optional[ConnectorSpec]
        return next((s for s in self._specs if s.name == name), None)

    def on_change(self, listener):
        # type: (Listener) -> None
        """listener(specs) after every change; a listener starts from the configured specs
        itself (the data policy and remote logging are built from them)."""
        self._listeners.append(listener)

    def _changed(self, specs):
        # type: (Sequence[ConnectorSpec]) -> None
        self._specs = tuple(specs)
        for listener in self._listeners:
            listener(self._specs)

    # -- life cycle ---------------------------------------------------------------------------
    def start_all(self):
        self.supervisor.start_all()

    def stop_all(self):
        self.supervisor.stop_all()

    def check(self):
        # type: () -> float
        """Supervision (main loop round): restarts due, dead or stuck threads; seconds until next."""
        return self.supervisor.check()

    # -- changes ------------------------------------------------------------------------------
    def put(self, spec):
        # type: (ConnectorSpec) -> None
        """Add the connector `spec`, or run the one of that name on its new configuration."""
        specs = [spec if s.name == spec.name else s for s in self._specs]
        self._changed(specs if self.spec(spec.name) is not None else specs + [spec])
        self.supervisor.put(spec)

    def remove(self, name):
        # type: (str) -> bool
        """Stop and forget the connector `name`; False when there is none."""
        removed = self.supervisor.remove(name)
        if removed or self.spec(name) is not None:
            self._changed([s for s in self._specs if s.name != name])
        return removed

    def has(self, name):
        # type: (str) -> bool
        """Whether a connector of that name is configured (running or not)."""
        return self.supervisor.slot(name) is not None

    # -- readers ------------------------------------------------------------------------------
    def by_name(self, name):
        # type: (Optional[str]) -> Any
        """The running instance called `name` (either of its names), or None; any thread."""
        return self.supervisor.by_name(name)

    def of_type(self, kind, connector_id=None):
        # type: (str, Any) -> List[Any]
        """The running instances of type `kind` (ThingsBoard's connector RPC page): the
        one whose id is `connector_id`, or every one when it is None; any thread."""
        out = []
        for spec in self._specs:
            if spec.type.lower() == kind.lower() and (connector_id is None or spec.id == connector_id):
                connector = self.by_name(spec.name)
                if connector is not None:
                    out.append(connector)
        return out

    def type_of(self, name):
        # type: (str) -> Optional[str]
        spec = self.spec(name)
        return spec.type if spec is not None else None

    def states(self):
        return self.supervisor.states()
