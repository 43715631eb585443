"""ThingsBoard IoT Gateway: a thread-based daemon relaying field devices to ThingsBoard."""

__version__ = "0.1.0"
# The version of upstream's configuration format this gateway speaks (its files, its remote
# configuration). Reported to ThingsBoard as the gateway's `Version`: the gateway pages pick
# their connector forms by it (docs/REMOTE.md). Raise it only with the files we accept.
FORMAT_VERSION = "3.8.5"
