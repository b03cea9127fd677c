"""The resident set size of this process, for the memory benchmarks (Linux: ``/proc/self/status``)."""

from __future__ import annotations


def rss_mib() -> float:
    """This process's current RSS (``VmRSS``) in MiB; NaN where ``/proc/self/status`` has no such line."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")
