"""CPU seconds per process group while a section runs, from psutil: the broker (beam.smp),
MariaDB (mariadbd), each service, localstripe and the load generator itself. The broker and
MariaDB are shared with anything else on the machine, so their figures include that too."""
from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping

import psutil

# Shared servers, found by process name.
SYSTEM_GROUPS = {"rabbitmq": ("beam.smp",), "mariadb": ("mariadbd", "mysqld")}
LOAD_GENERATOR = "bench client"  # this process: the load generator, kombu and gRPC clients


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


class CpuMeter:
    """Groups are named lists of pids. `sample()` returns CPU seconds per group since the
    previous sample or start()."""

    def __init__(self):
        self.groups: dict[str, list[psutil.Process]] = {}
        for group, names in SYSTEM_GROUPS.items():
            self.groups[group] = [p for p in psutil.process_iter(["name"]) if p.info["name"] in names]
        self.groups[LOAD_GENERATOR] = [psutil.Process(os.getpid())]
        self._last: dict[str, float] = {}
        self._last_time = time.monotonic()

    def watch(self, group: str, pids: Iterable[int]) -> None:
        """Add (or replace) a group of processes, e.g. one service's `nameko run`."""
        processes = []
        for pid in pids:
            try:
                processes.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass
        self.groups[group] = processes
        self._last.pop(group, None)

    def watch_all(self, groups: Mapping[str, Iterable[int]]) -> None:
        for group, pids in groups.items():
            self.watch(group, pids)

    def forget(self, group: str) -> None:
        self.groups.pop(group, None)
        self._last.pop(group, None)

    def _group_total(self, processes: list[psutil.Process]) -> float:
        total = 0.0
        # The processes themselves, not their children: the services are children of the
        # benchmark's own process, which must not count them as load-generator time.
        for process in processes:
            try:
                total += _cpu_seconds(process)
            except psutil.NoSuchProcess:
                pass
        return total

    def start(self) -> None:
        """Begin a measurement window."""
        self._last = {group: self._group_total(procs) for group, procs in self.groups.items()}
        self._last_time = time.monotonic()

    def sample(self) -> dict:
        """{"wall_s", "groups": {group: {"cpu_s", "cores"}}} since start() or the last sample;
        `cores` is CPU seconds per wall second (1.0 = one core busy all along)."""
        now = time.monotonic()
        wall = max(now - self._last_time, 1e-9)
        groups = {}
        for group, procs in self.groups.items():
            total = self._group_total(procs)
            used = max(0.0, total - self._last.get(group, total))
            self._last[group] = total
            groups[group] = {"cpu_s": round(used, 2), "cores": round(used / wall, 2)}
        self._last_time = now
        return {"wall_s": round(wall, 2), "groups": groups}
