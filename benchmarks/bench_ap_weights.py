"""AP-tracking weights side by side: the packaged default against the lab's, on every validation set, one run.

Each set (``mea_pipeline.ap_training.validation_sets``: our synth recordings and the held-out
generator's sets, some outside the training ranges) is drawn once and tracked by step 10 with
each weight file. Printed per set: axon units, directions within 20 degrees for each, their
ratio (packaged / lab), the optic-nerve-head error and method, and the per-voxel precision and
recall at step 10's noise threshold (0.05) against the set's labels. The lab's weights are read from
``../shared/reference/ap_cnn/`` beside the clone; without them only the packaged weights run.

Run: ``python -c "from benchmarks import bench_ap_weights; bench_ap_weights.main()"``.
"""

from __future__ import annotations

from pathlib import Path

from mea_pipeline.ap_tracking.model_io import load_model
from mea_pipeline.ap_training.validation_sets import compare_weights, validation_scenes

from .results import update_results

LAB_WEIGHTS = (Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "ap_cnn"
               / "CNN_3d_with_velocity_model_from_all_process.pth")
SEED = 2026
UNITS_PER_SET = 40


def main() -> dict:
    models = {"packaged": load_model(None, "cpu")}
    if LAB_WEIGHTS.is_file():
        models["lab"] = load_model(LAB_WEIGHTS, "cpu")
    else:
        print(f"AP weights: the lab's weights are not at {LAB_WEIGHTS}; the packaged weights run alone")
    results = compare_weights(models, validation_scenes(SEED, n_units=UNITS_PER_SET))
    figures = {"seed": SEED, "units_per_set": UNITS_PER_SET, "sets": {}}
    print(f"AP-tracking weights, directions within 20 deg of the axon units (seed {SEED}, {UNITS_PER_SET} units per set):")
    for name, by_model in results.items():
        row = {label: {key: check[key] for key in ("n_axon_units", "n_with_direction", "n_within_tolerance",
                                                   "onh_error_electrodes", "onh_method")}
                      | {"voxel_at_0.05": {k: check["voxel_metrics"]["thresholds"][1][k] for k in ("precision", "recall")}}
               for label, check in by_model.items()}
        if "lab" in row and row["lab"]["n_within_tolerance"]:
            row["ratio_within_packaged_vs_lab"] = round(
                row["packaged"]["n_within_tolerance"] / row["lab"]["n_within_tolerance"], 2)
        figures["sets"][name] = row
        cells = "  ".join(f"{label} {r['n_within_tolerance']}/{r['n_axon_units']} (ONH {r['onh_error_electrodes']} el, "
                          f"{r['onh_method']})" for label, r in row.items() if isinstance(r, dict))
        print(f"  {name:12s} {cells}" + (f"  ratio {row['ratio_within_packaged_vs_lab']}"
                                        if "ratio_within_packaged_vs_lab" in row else ""))
    update_results("ap_weights", figures)
    return figures


if __name__ == "__main__":
    main()
