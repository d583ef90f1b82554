"""eimage_sta throughput against merely reading the same sensor block, and its peak memory.

A cached synthetic file (40 s of full-chip 65 x 65 int16 sensor data at 20 kHz, HDF5 chunks of
(1000, 65, 65), 100 units firing at 10 Hz) is read and run through ``compute_eimage_sta`` on
its first 20 s. Merely reading is timed two ways, with the same chunks: the step's own reader
with nothing computed (read-ahead hints to the OS, two buffers, a thread) and a plain
``read_direct`` loop into one buffer. The ratios use whichever was faster in that mode, the
stricter comparison; both are reported.
Both are timed cold (the file dropped from the page cache with ``posix_fadvise(DONTNEED)``
before each run) and warm (file in the page cache), interleaved, median of three. Peak memory
is the peak RSS of a fresh process computing 10 s and 40 s of the same file.

Cold reads depend on the disk's state: the CI/VM disks we run on are rate-limited token
buckets (here about 1.5 GB/s for the first 1-2 GB, then about 0.45 GB/s, refilled while idle).
Each cold run therefore starts after the same rest, so the read and the step see the same
disk; the figures still move with the machine's neighbours.

Run: ``python -m benchmarks.bench_eimage``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from mea_pipeline.eimage import EimageParams
from mea_pipeline.eimage.plan import Plan
from mea_pipeline.eimage.reader import BufferReader
from mea_pipeline.eimage.sta import compute_eimage_sta
from mea_pipeline.eimage.zero_phase import ZeroPhaseHighpass

from .results import update_results

WORK = Path(__file__).resolve().parent / "_work" / "eimage"
DATASET = "Acquisition/Sensor Data/SensorData 1 1"
FS = 20_000.0
FILE_SECONDS = 40
TIMED_SECONDS = 20
N_UNITS = 100
RATE_HZ = 10.0
REPEATS = 3
COLD_REST_S = 12.0  # idle time before each cold run, so both start with the same I/O credit
CHIP = 65
CHUNK_FRAMES = 1000


def spike_trains(seconds: float = FILE_SECONDS) -> list[np.ndarray]:
    """Poisson spike samples of every unit (fixed seed)."""
    rng = np.random.default_rng(11)
    n = int(seconds * FS)
    return [np.sort(rng.choice(n, rng.poisson(RATE_HZ * seconds), replace=False)) for _ in range(N_UNITS)]


def sensor_file() -> Path:
    """The benchmark recording, written once (noise, slow drift, offsets, spike footprints)."""
    path = WORK / "sensor_40s.h5"
    if path.is_file():
        with h5py.File(path, "r") as f:
            if f.attrs.get("complete", False):
                return path
    WORK.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    n = int(FILE_SECONDS * FS)
    noise = [rng.normal(0, 12, (CHUNK_FRAMES, CHIP, CHIP)).astype(np.float32) for _ in range(8)]
    offset = rng.integers(-400, 400, (CHIP, CHIP)).astype(np.float32)
    drift_amp = rng.uniform(20, 80, (CHIP, CHIP)).astype(np.float32)
    drift_phase = rng.uniform(0, 2 * np.pi, (CHIP, CHIP)).astype(np.float32)
    spikes = spike_trains()
    sites = rng.integers(3, CHIP - 3, (N_UNITS, 2))
    lags = np.arange(30)
    shape = (-60 * np.exp(-((lags - 8) / 2.5) ** 2) + 20 * np.exp(-((lags - 16) / 5.0) ** 2)).astype(np.float32)
    yy, xx = np.mgrid[-3:4, -3:4]
    footprint = np.exp(-(yy**2 + xx**2) / 3.0).astype(np.float32)
    tmp = path.with_suffix(".tmp")
    with h5py.File(tmp, "w") as f:
        data = f.create_dataset(DATASET, (n, CHIP, CHIP), "<i2", chunks=(CHUNK_FRAMES, CHIP, CHIP))
        for a in range(0, n, CHUNK_FRAMES):
            t = (a + np.arange(CHUNK_FRAMES, dtype=np.float32)) / FS
            block = noise[rng.integers(len(noise))] + offset
            block += drift_amp * np.sin(2 * np.pi * 3.0 * t[:, None, None] + drift_phase)
            for u, (r, c) in enumerate(sites):
                for s in spikes[u][(spikes[u] > a - 30) & (spikes[u] < a + CHUNK_FRAMES)]:
                    lo, hi = max(0, a - s), min(30, a + CHUNK_FRAMES - s)
                    patch = shape[lo:hi, None, None] * footprint
                    block[s + lo - a : s + hi - a, r - 3 : r + 4, c - 3 : c + 4] += patch
            data[a : a + CHUNK_FRAMES] = np.clip(np.rint(block), -32768, 32767).astype(np.int16)
        f.attrs["complete"] = True
    os.replace(tmp, path)
    os.sync()  # only clean pages can be dropped from the page cache
    return path


def drop_from_page_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def time_read(path: Path, n_samples: int, params: EimageParams) -> float:
    """Seconds for the step's reader to deliver the first ``n_samples`` frames, nothing computed."""
    with h5py.File(path, "r") as f:
        data = f[DATASET]
        settle = ZeroPhaseHighpass(params.filter_order, params.cutoff_hz, FS).settle_samples()
        plan = Plan(n_samples, params.window[1] - params.window[0], params.chunk_samples, settle)
        t0 = time.perf_counter()
        reader = BufferReader(data, plan, int(np.prod(data.shape[1:])))
        try:
            for _ in reader:
                reader.release()
        finally:
            reader.close()
        return time.perf_counter() - t0


def time_plain_read(path: Path, n_samples: int, chunk: int) -> float:
    """Seconds to ``read_direct`` the first ``n_samples`` frames in ``chunk`` blocks into one buffer."""
    with h5py.File(path, "r") as f:
        data = f[DATASET]
        buf = np.empty((chunk,) + data.shape[1:], data.dtype)
        t0 = time.perf_counter()
        for a in range(0, n_samples, chunk):
            b = min(a + chunk, n_samples)
            data.read_direct(buf, np.s_[a:b], np.s_[: b - a])
        return time.perf_counter() - t0


def time_eimage(path: Path, spikes, params: EimageParams) -> float:
    with h5py.File(path, "r") as f:
        t0 = time.perf_counter()
        compute_eimage_sta(f[DATASET], spikes, FS, params)
        return time.perf_counter() - t0


def peak_rss_mb(seconds: float) -> tuple[float, float]:
    """(peak RSS before the call, peak RSS after it) in MB of a fresh process computing ``seconds``.

    VmHWM belongs to the process's own address space; ``ru_maxrss`` would carry over the
    parent's size across fork and exec.
    """
    code = (
        "import h5py\n"
        "from benchmarks.bench_eimage import DATASET, FS, sensor_file, spike_trains\n"
        "from mea_pipeline.eimage import EimageParams\n"
        "from mea_pipeline.eimage.sta import compute_eimage_sta\n"
        "hwm = lambda: [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "spikes = spike_trains()\n"
        "f = h5py.File(sensor_file(), 'r')\n"
        "before = hwm()\n"
        f"compute_eimage_sta(f[DATASET], spikes, FS, EimageParams(duration_s={seconds}))\n"
        "print(before, hwm())\n"
    )
    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, check=True, capture_output=True, text=True)
    before, after = (int(v) / 1024 for v in out.stdout.split())
    return before, after


def _run(kind: str, path: Path, spikes, params: EimageParams) -> float:
    n_samples = int(params.duration_s * FS)
    if kind == "read":
        return time_read(path, n_samples, params)
    if kind == "plain":
        return time_plain_read(path, n_samples, params.chunk_samples)
    return time_eimage(path, spikes, params)


def main() -> dict:
    path = sensor_file()
    params = EimageParams(duration_s=TIMED_SECONDS)
    spikes = spike_trains()
    times = {key: [] for key in ("read_cold", "eimage_cold", "plain_cold", "read_warm", "eimage_warm", "plain_warm")}
    time_eimage(path, spikes, EimageParams(duration_s=1.0))  # imports and first-call set-up
    for _ in range(REPEATS):
        for kind in ("read", "eimage", "plain"):
            drop_from_page_cache(path)
            time.sleep(COLD_REST_S)
            times[f"{kind}_cold"].append(_run(kind, path, spikes, params))
            times[f"{kind}_warm"].append(_run(kind, path, spikes, params))
    t = {key: statistics.median(v) for key, v in times.items()}
    rss = {s: peak_rss_mb(s) for s in (10, 40)}
    read = {mode: min(t[f"read_{mode}"], t[f"plain_{mode}"]) for mode in ("cold", "warm")}
    figures = {
        "read_to_step1_throughput_ratio": read["cold"] / t["eimage_cold"],
        "read_to_step1_throughput_ratio_warm": read["warm"] / t["eimage_warm"],
        "read_seconds": read["cold"],
        "eimage_seconds": t["eimage_cold"],
        "read_seconds_warm": read["warm"],
        "eimage_seconds_warm": t["eimage_warm"],
        "reader_read_seconds": t["read_cold"],
        "reader_read_seconds_warm": t["read_warm"],
        "plain_read_seconds": t["plain_cold"],
        "plain_read_seconds_warm": t["plain_warm"],
        "peak_rss_mb_10s": rss[10][1],
        "peak_rss_mb_40s": rss[40][1],
        "peak_memory_ratio_40s_vs_10s": rss[40][1] / rss[10][1],
        "rss_growth_mb_10s": rss[10][1] - rss[10][0],
        "rss_growth_mb_40s": rss[40][1] - rss[40][0],
        "sensor_seconds": TIMED_SECONDS,
        "n_units": N_UNITS,
        "spike_rate_hz": RATE_HZ,
        "chunk_samples": params.chunk_samples,
        "repeats": REPEATS,
        "cold_rest_s": COLD_REST_S,
        "cpu_count": len(os.sched_getaffinity(0)),
    }
    print(f"eimage_sta vs merely reading the sensor block ({TIMED_SECONDS} s of 65x65 int16 at "
          f"{FS / 1000:g} kHz, {N_UNITS} units at {RATE_HZ:g} Hz, chunks of {params.chunk_samples}; "
          f"median of {REPEATS})")
    print(f"  {'':34s}{'reader [s]':>11s}{'plain [s]':>10s}{'eimage [s]':>11s}{'read/eimage':>13s}")
    for mode, label in (("cold", "cold (fadvise DONTNEED), headline"), ("warm", "warm (page cache)")):
        print(f"  {label:34s}{t[f'read_{mode}']:11.2f}{t[f'plain_{mode}']:10.2f}{t[f'eimage_{mode}']:11.2f}"
              f"{read[mode] / t[f'eimage_{mode}']:13.2f}")
    print("  (read/eimage uses the faster of the two reads: the step's reader with nothing computed, "
          "or a plain read_direct loop)")
    print(f"  peak RSS: {rss[10][1]:.0f} MB for 10 s, {rss[40][1]:.0f} MB for 40 s "
          f"(ratio {figures['peak_memory_ratio_40s_vs_10s']:.3f}; growth during the call "
          f"{figures['rss_growth_mb_10s']:.0f} / {figures['rss_growth_mb_40s']:.0f} MB)")
    update_results("eimage_sta", figures)
    return figures


if __name__ == "__main__":
    main()
