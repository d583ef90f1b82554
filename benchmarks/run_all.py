"""`make bench`: every benchmark, each printing ratios measured side by side in one run."""

import os

# Offline-friendly Prefect defaults for every benchmark (and its child processes): no analytics,
# and time for a temporary server to migrate a new database on a fresh checkout.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

from . import (bench_ap_cnn, bench_ap_weights, bench_eimage, bench_lab_scale, bench_nwb,  # noqa: E402 - after the
               bench_orchestration)  # settings above


def main() -> None:
    bench_eimage.main()
    bench_orchestration.main()
    bench_ap_cnn.main()
    bench_ap_weights.main()
    bench_lab_scale.main()  # after bench_eimage: repeats its ratios
    bench_nwb.main()  # exports bench_lab_scale's 400-unit output


if __name__ == "__main__":
    main()
