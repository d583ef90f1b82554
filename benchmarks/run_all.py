"""`make bench`: every benchmark, each printing ratios measured side by side in one run."""

from . import bench_ap_cnn, bench_eimage, bench_orchestration


def main() -> None:
    bench_eimage.main()
    bench_orchestration.main()
    bench_ap_cnn.main()


if __name__ == "__main__":
    main()
