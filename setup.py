"""Packaging for the thread-based ThingsBoard IoT Gateway (Python 3.7+)."""
import re

from setuptools import find_packages, setup

with open("thingsboard_gateway/__init__.py") as f:
    VERSION = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)

setup(
    name="thingsboard-gateway-threaded",
    version=VERSION,
    description="Thread-based ThingsBoard IoT Gateway, config-compatible with upstream",
    packages=find_packages(include=["thingsboard_gateway", "thingsboard_gateway.*"]),
    python_requires=">=3.7",
    # Pinned to versions that install on Python 3.7 (Raspbian Buster) and on current Python.
    install_requires=[
        "paho-mqtt==2.1.0",
        "pymodbus==2.5.3",
        "opcua==0.98.13",
        "pyserial==3.5",
        # paho-mqtt 2.1.0 imports typing_extensions on Python < 3.8 without declaring it.
        "typing_extensions==4.7.1; python_version < '3.8'",
        # SNMP (connectors/snmp): puresnmp 1.11 is the last with a synchronous API (2.x is
        # asyncio only), pure Python, 3.5 to 3.13; its dependencies pinned with it.
        "puresnmp==1.11.0",
        "t61codec==2.0.0",
        "verlib==0.1",
        "importlib_metadata==6.7.0; python_version < '3.8'",
        "zipp==3.15.0; python_version < '3.8'",
    ],
    extras_require={
        # bluepy compiles a helper binary: needs libglib2.0-dev and pkg-config.
        "ble": ["bluepy==1.3.0"],
    },
    # A plain script, not a console_scripts entry point: older pips write an entry point's
    # launcher so that it imports pkg_resources (bin/thingsboard-gateway says why that costs).
    scripts=["bin/thingsboard-gateway"],
    # Always write its first line anew: an in-tree build/ left by an install into another
    # environment would otherwise hand that environment's interpreter to this one.
    options={"build_scripts": {"force": True}},
)
