"""Gateway statistics in upstream's shapes, so ThingsBoard's gateway dashboard charts them:
`machineStats`, `serviceStats` and `connectorsStats` telemetry, and `totalMemory`,
`totalDisk`, `cpuCount` attributes sent once. Read from /proc and statvfs (Linux), no
dependency; a figure that cannot be read is left out."""
import os
import time
from typing import Any, Callable, Dict, Optional, Tuple


def _read(path):
    # type: (str) -> Optional[str]
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _meminfo():
    # type: () -> Dict[str, int]
    """/proc/meminfo in bytes."""
    out = {}
    for line in (_read("/proc/meminfo") or "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            out[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return out


def _system_cpu():
    # type: () -> Optional[Tuple[float, float]]
    """(busy, total) jiffies of all CPUs since boot."""
    text = _read("/proc/stat")
    if not text:
        return None
    fields = [float(v) for v in text.splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return sum(fields) - idle, sum(fields)


def _process_cpu():
    # type: () -> float
    """CPU seconds this process used."""
    times = os.times()
    return times[0] + times[1]


def _rss():
    # type: () -> Optional[int]
    for line in (_read("/proc/self/status") or "").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


def memory_full_info():
    # type: () -> Dict[str, int]
    """Upstream's gwProcessMemoryFullInfo (psutil's memory_full_info names), in bytes, from
    /proc/self/statm and smaps_rollup (uss, pss, swap: Linux 4.14+)."""
    out = {}  # type: Dict[str, int]
    statm = (_read("/proc/self/statm") or "").split()
    if len(statm) >= 6:
        page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        size, resident, shared, text, _, data = (int(v) * page for v in statm[:6])
        out.update(vms=size, rss=resident, shared=shared, text=text, data=data)
    rollup = {}
    for line in (_read("/proc/self/smaps_rollup") or "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            rollup[parts[0].rstrip(":")] = int(parts[1]) * 1024
    if rollup:
        out["uss"] = rollup.get("Private_Clean", 0) + rollup.get("Private_Dirty", 0)
        out["pss"] = rollup.get("Pss", 0)
        out["swap"] = rollup.get("Swap", 0)
    return out


class MachineStats(object):
    """CPU usage is measured between two calls (the statistics period)."""

    def __init__(self, disk_path, clock=time.monotonic):
        # type: (str, Callable[[], float]) -> None
        self.disk_path = disk_path
        self._clock = clock
        self._last_system = _system_cpu()
        self._last_process = (_process_cpu(), clock())

    def _disk(self):
        # type: () -> Optional[Tuple[int, int]]
        """(total, free) bytes of the file system holding the data folder."""
        path = self.disk_path
        while path and not os.path.exists(path):
            path = os.path.dirname(path)
        try:
            stat = os.statvfs(path or "/")
        except OSError:
            return None
        return stat.f_blocks * stat.f_frsize, stat.f_bavail * stat.f_frsize

    def once(self):
        # type: () -> Dict[str, Any]
        """The attributes upstream sends once: totalMemory, totalDisk (bytes), cpuCount."""
        out = {"cpuCount": os.cpu_count() or 1}  # type: Dict[str, Any]
        memory = _meminfo().get("MemTotal")
        if memory:
            out["totalMemory"] = memory
        disk = self._disk()
        if disk:
            out["totalDisk"] = disk[0]
        return out

    def machine(self, counters):
        # type: (Dict[str, Any]) -> Dict[str, Any]
        """totalCpuUsage and gwProcessCpuUsage (% of one period; the process's of all
        CPUs), freeMemory, gwMemory and gwProcessMemoryFullInfo (bytes), diskUsage (%),
        freeDisk (bytes), msgsSentToPlatform and msgsReceivedFromPlatform (counters:
        Statistics.snapshot())."""
        out = {"msgsSentToPlatform": counters.get("platform_messages_published", 0),
               "msgsReceivedFromPlatform": counters.get("platform_messages_received", 0),
               "gwProcessMemoryFullInfo": memory_full_info()}  # type: Dict[str, Any]
        system = _system_cpu()
        if system and self._last_system and system[1] > self._last_system[1]:
            out["totalCpuUsage"] = round(100.0 * (system[0] - self._last_system[0])
                                         / (system[1] - self._last_system[1]), 1)
        self._last_system = system
        cpu, now = _process_cpu(), self._clock()
        last_cpu, last_now = self._last_process
        if now > last_now:
            out["gwProcessCpuUsage"] = round(100.0 * (cpu - last_cpu) / (now - last_now)
                                             / (os.cpu_count() or 1), 2)
        self._last_process = (cpu, now)
        memory = _meminfo()
        if "MemAvailable" in memory:
            out["freeMemory"] = memory["MemAvailable"]
        rss = _rss()
        if rss is not None:
            out["gwMemory"] = rss
        disk = self._disk()
        if disk and disk[0]:
            out["diskUsage"] = round(100.0 * (disk[0] - disk[1]) / disk[0], 1)
            out["freeDisk"] = disk[1]
        return out


def service_stats(counters, queued):
    # type: (Dict[str, Any], int) -> Dict[str, Any]
    """upstream's serviceStats from our counters (Statistics.snapshot()): storageMsgPulled
    (records read from storage and delivered), storageMsgCount (records in storage now),
    platformMsgPushed (messages published), platformAttrProduced and platformTsProduced
    (attribute and telemetry messages of devices' data); then our own names."""
    received = counters.get("messages_received", 0)
    sent = counters.get("messages_sent", 0)
    published = counters.get("platform_messages_published", 0)
    attributes = counters.get("platform_attribute_messages_published", 0)
    return {"storageMsgPulled": sent, "storageMsgCount": queued, "platformMsgPushed": published,
            "platformAttrProduced": attributes, "platformTsProduced": max(0, published - attributes),
            "eventsAdded": received, "eventsProcessed": sent, "eventsQueued": queued,
            "eventsDropped": counters.get("events_dropped", 0), "eventsInvalid": counters.get("events_invalid", 0)}


def connector_stats(per_connector, flat, errors):
    # type: (Dict[str, int], Dict[str, Any], int) -> Dict[str, Any]
    """upstream's connectorsStats entry of one connector: per_connector its Statistics
    counters, flat our `<name>_*` figures without the prefix, errors its failures."""
    converters = sum(v for k, v in flat.items() if k.startswith("failures_converter")
                     or k.startswith("failures_conversion"))
    received = per_connector.get("messages_received", 0)
    out = dict(flat)
    out.update({"connectorMsgsReceived": received, "connectorBytesReceived": per_connector.get("bytes_received", 0),
                "storageMsgPushed": received, "connectorsErrors": errors, "convertersErrors": converters})
    return out
