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

    def machine(self):
        # type: () -> Dict[str, Any]
        """totalCpuUsage and gwProcessCpuUsage (% of one period; the process's of all
        CPUs), freeMemory and gwMemory (bytes), diskUsage (%), freeDisk (bytes)."""
        out = {}  # type: Dict[str, Any]
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
    """upstream's serviceStats names from our counters (Statistics.snapshot())."""
    received = counters.get("messages_received", 0)
    sent = counters.get("messages_sent", 0)
    published = counters.get("platform_messages_published", 0)
    return {"eventsAdded": received, "eventsProcessed": sent, "storageMsgPulled": sent,
            "msgsSentToPlatform": published, "platformMsgPushed": published,
            "msgsReceivedFromPlatform": counters.get("platform_messages_received", 0),
            "eventsQueued": queued, "eventsDropped": counters.get("events_dropped", 0),
            "eventsInvalid": counters.get("events_invalid", 0)}
