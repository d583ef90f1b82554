"""dsgc's outputs: every key the step writes, declared once (the writers and readers name them here).

The lab's direction sections under ``spike_times_sectioned/{movie}/direction_section`` and, ours,
each unit's selectivity (with its preferred direction in every frame) under
``features/{movie}/dsgc``, the recording's summary under ``metadata/dsgc`` and the stimulus ->
electrode registration under ``metadata/stimulus_registration``.
"""

from __future__ import annotations

from ..frames import ELECTRODE, RETINA, STIMULUS
from ..schema import LAB, OURS, Out, outs

DS = "units/{unit}/spike_times_sectioned/{movie}/direction_section"
# One group per direction, named by its angle in degrees ("0", "45", ..., "315").
DIRECTION = DS + "/{direction}"
FEATURES = "units/{unit}/features/{movie}/dsgc"
META = "metadata/dsgc"
REGISTRATION = "metadata/stimulus_registration"
FRAMES = "movie frames"

# -- each unit's preferred direction in the electrode and retina frames ----------------------------
PREFERRED_ELECTRODE = Out(
    FEATURES + "/preferred_direction_electrode_deg", "f", 0,
    "preferred_direction_deg carried into the electrode frame through the stimulus registration's linear "
    "part (0 = toward +column, 90 = toward +row of the eimage); NaN when there is no registration",
    required=False, origin=OURS, units="degrees", frame=ELECTRODE)
PREFERRED_RETINA = Out(
    FEATURES + "/preferred_direction_retina_deg", "f", 0,
    "the electrode-frame direction plus ap_tracking's angle_correction_deg (the lab's rule for soma polar "
    "coordinates): 0 = nasal, 90 = dorsal, 180 = temporal, 270 = ventral; NaN without ONH and Center_xy",
    required=False, origin=OURS, units="degrees", frame=RETINA)
PREFERRED_RETINA_LABEL = Out(FEATURES + "/preferred_direction_retina_label", "str", 0,
                             "nearest of nasal, dorsal, temporal, ventral (ties to the earlier); '' when NaN",
                             required=False, origin=OURS, frame=RETINA)
PREFERRED_ELECTRODE_REASON, PREFERRED_RETINA_REASON = outs(
    FEATURES, ("preferred_direction_electrode_reason", "preferred_direction_retina_reason"), "str", 0,
    "why the direction in that frame is NaN ('' when it has a value)", required=False, origin=OURS)
FRAME_OUTPUTS = (PREFERRED_ELECTRODE, PREFERRED_RETINA, PREFERRED_RETINA_LABEL, PREFERRED_ELECTRODE_REASON,
                 PREFERRED_RETINA_REASON)

# -- the stimulus -> electrode registration --------------------------------------------------------
REG_STATUS = Out(f"{REGISTRATION}/status", "str", 0, "ok or refused (then NaN numbers and the reason)", origin=OURS)
REG_REASON = Out(f"{REGISTRATION}/reason", "str", 0, "why the registration was refused ('' when ok)", origin=OURS)
REG_KIND = Out(f"{REGISTRATION}/kind", "str", 0, "similarity (rotation, uniform scale, translation, reflection "
               "allowed) or affine", origin=OURS)
REG_CONVENTION = Out(f"{REGISTRATION}/convention", "str", 0, "how matrix and offset map stimulus pixels to electrodes",
                     origin=OURS)
REG_MATRIX = Out(f"{REGISTRATION}/matrix", "f", 2, "(2, 2) linear part: electrode_xy = matrix @ stimulus_xy + offset, "
                 "xy = (column, row)", origin=OURS, units="electrodes per stimulus pixel")
REG_OFFSET = Out(f"{REGISTRATION}/offset", "f", 1, "(2,) translation, (column, row)", origin=OURS, units="electrodes",
                 frame=ELECTRODE)
REG_REFLECTED = Out(f"{REGISTRATION}/reflected", "b", 0, "the stimulus is mirrored against the electrodes "
                    "(det(matrix) < 0)", origin=OURS)
REG_SCALE = Out(f"{REGISTRATION}/scale", "f", 0, "sqrt(|det(matrix)|)", origin=OURS,
                units="electrodes per stimulus pixel")
REG_SCALE_UM = Out(f"{REGISTRATION}/scale_um_per_px", "f", 0, "scale times electrode_pitch_um", origin=OURS,
                   units="um per stimulus pixel")
REG_ROTATION = Out(f"{REGISTRATION}/rotation_deg", "f", 0, "electrode-frame angle of the stimulus +column axis, or "
                   "of its +row axis when reflected (matrix = scale * R(rotation_deg) @ T, T swapping column and row)",
                   origin=OURS, units="degrees", frame=ELECTRODE)
REG_RESIDUAL = Out(f"{REGISTRATION}/residual_um", "f", 0, "RMS distance of the mapped RF centres from the somas of "
                   "the units used", origin=OURS, units="um")
REG_RESIDUAL_OTHER = Out(f"{REGISTRATION}/residual_other_handedness_um", "f", 0, "the same for the best fit of the "
                         "other handedness on the same units (how clearly the data decide reflected); NaN for affine",
                         origin=OURS, units="um")
REG_N_PAIRED = Out(f"{REGISTRATION}/n_units_paired", "i", 0, "units with both an RF centre (rf_geometry) and a soma "
                   "centre (soma_geometry)", origin=OURS)
REG_N_USED = Out(f"{REGISTRATION}/n_units_used", "i", 0, "paired units within registration_outlier_um of the fit",
                 origin=OURS)
REG_UNITS = Out(f"{REGISTRATION}/units", "str", 1, "the paired units, in the order of the arrays below", origin=OURS)
REG_OUTLIER_UNITS = Out(f"{REGISTRATION}/outlier_units", "str", 1, "paired units farther than "
                        "registration_outlier_um from the fit", origin=OURS)
REG_STIMULUS_XY = Out(f"{REGISTRATION}/stimulus_xy_px", "f", 2, "(n, 2) RF centres of the paired units, (column, "
                      "row)", origin=OURS, units="stimulus pixels", frame=STIMULUS)
REG_ELECTRODE_XY = Out(f"{REGISTRATION}/electrode_xy", "f", 2, "(n, 2) soma centres of the paired units, (column, "
                       "row)", origin=OURS, units="electrodes", frame=ELECTRODE)
REG_RESIDUALS = Out(f"{REGISTRATION}/residuals_um", "f", 1, "(n,) distance of each paired unit's mapped RF centre "
                    "from its soma", origin=OURS, units="um")
REG_RF_MOVIE = Out(f"{REGISTRATION}/rf_movie", "str", 0, "the dense-noise movie whose RF centres were used ('' if "
                   "none)", origin=OURS)
REG_PITCH = Out(f"{REGISTRATION}/electrode_pitch_um", "f", 0, "electrode pitch (parameter electrode_pitch_um)",
                origin=OURS, units="um")
REG_RETINA_REASON = Out(f"{REGISTRATION}/retina_reason", "str", 0, "why directions have no retina frame (no ONH, or "
                        "no DV and NT in Center_xy); '' when they have", origin=OURS)
REGISTRATION_OUTPUTS = (
    REG_STATUS, REG_REASON, REG_KIND, REG_CONVENTION, REG_MATRIX, REG_OFFSET, REG_REFLECTED, REG_SCALE, REG_SCALE_UM,
    REG_ROTATION, REG_RESIDUAL, REG_RESIDUAL_OTHER, REG_N_PAIRED, REG_N_USED, REG_UNITS, REG_OUTLIER_UNITS,
    REG_STIMULUS_XY, REG_ELECTRODE_XY, REG_RESIDUALS, REG_RF_MOVIE, REG_PITCH, REG_RETINA_REASON,
)

# -- the lab's direction sections ------------------------------------------------------------------
LAB_DIRECTION_LIST = Out(DS + "/_attrs/direction_list", "i", 1, "direction of each direction group, in the stimulus' "
                         "order", required=False, origin=LAB, units="deg", frame=STIMULUS)
N_DIRECTIONS, N_REPETITIONS = outs(DS + "/_attrs", ("n_directions", "n_repetitions"), "i", 0,
                                   "{name} of the moving bar", required=False, origin=LAB)
PADDING_FRAMES = Out(DS + "/_attrs/padding_frames", "i", 0, "frames added before ON and after OFF", required=False,
                     origin=LAB, units=FRAMES)
CELL_CENTER_ROW, CELL_CENTER_COL = outs(
    DS + "/_attrs", ("cell_center_row", "cell_center_col"), "i", 0,
    "{name}: pixel of the RF centre where the bar crossings are read (int(c * 20 + 10), clipped)",
    required=False, origin=LAB, units="stimulus pixels", frame=STIMULUS)
TRIALS = Out(DIRECTION + "/trials/{trial}", "i", 1,
             "spikes of repetition {trial} in direction {direction} (degrees), movie-relative frames", required=False,
             origin=LAB, units=FRAMES)
SECTION_BOUNDS = Out(DIRECTION + "/section_bounds", "i", 2,
                     "(n_repetitions, 2) [ON - padding, OFF + padding] movie-relative frames, both ends included",
                     required=False, origin=LAB, units=FRAMES)
TRIALS_SAMPLES = Out(DIRECTION + "/trials_samples/{trial}", "i", 1, "the same spikes as acquisition samples",
                     required=False, origin=OURS, units="samples")
SECTION_BOUNDS_SAMPLES = Out(DIRECTION + "/section_bounds_samples", "i", 2, "the same windows as acquisition samples "
                             "(frame onsets)", required=False, origin=OURS, units="samples")
CELL_CENTER_SOURCE = Out(DS + "@cell_center_source", "str", None, "gaussian_fit or argmax (rf_geometry's centre used)",
                         required=False, origin=OURS)
SECTION_ANGLE_CONVENTION = Out(DS + "@angle_convention", "str", None, "how the direction groups' angles are measured",
                               required=False, origin=OURS, frame=STIMULUS)
SECTION_FRAME = Out(DS + "@frame", "str", None, "frame of the directions and pixels: 'stimulus'", required=False,
                    origin=OURS)
TRIALS_UNIT = Out(DS + "@trials_unit", "str", None, "what trials and trials_samples count", required=False,
                  origin=OURS)

# -- each unit's selectivity -----------------------------------------------------------------------
STATUS = Out(FEATURES + "/status", "str", 0, "ok or skipped", origin=OURS)
REASON = Out(FEATURES + "/reason", "str", 0, "why skipped, or why an index is NaN ('' otherwise)", origin=OURS)
PREFERRED = Out(FEATURES + "/preferred_direction_deg", "f", 0, "angle of the vector sum of the mean counts",
                required=False, origin=OURS, units="deg", frame=STIMULUS)
DIRECTION_LIST = Out(FEATURES + "/direction_list", "f", 1, "direction of each row of the counts",
                     required=False, origin=OURS, units="deg", frame=STIMULUS)
SPIKE_COUNTS = Out(FEATURES + "/spike_counts", "f", 1, "mean spike count of each direction's windows",
                   required=False, origin=OURS, units="spikes")
SPIKE_COUNTS_PER_TRIAL = Out(FEATURES + "/spike_counts_per_trial", "i", 2, "(n_directions, n_repetitions) spikes per "
                             "window", required=False, origin=OURS, units="spikes")
DSI_VECTOR = Out(FEATURES + "/dsi_vector", "f", 0, "length of the vector sum of the mean counts / their sum",
                 required=False, origin=OURS)
DSI_CLASSIC = Out(FEATURES + "/dsi_classic", "f", 0, "(pref - null) / (pref + null) of the mean counts",
                  required=False, origin=OURS)
OSI = Out(FEATURES + "/osi", "f", 0, "length of the second-harmonic vector sum / the sum of the mean counts",
          required=False, origin=OURS)
P_VALUE = Out(FEATURES + "/p_value", "f", 0, "of dsi_vector under a seeded permutation of the trial labels",
              required=False, origin=OURS)
N_SPIKES = Out(FEATURES + "/n_spikes", "i", 0, "spikes in all windows", required=False, origin=OURS, units="spikes")
N_PERMUTATIONS = Out(FEATURES + "/n_permutations", "i", 0, "permutations behind p_value", required=False, origin=OURS)

# -- the recording ---------------------------------------------------------------------------------
MOVIE = Out(META + "/movie", "str", 0, "the moving-bar movie (parameter movie)", origin=OURS)
META_STATUS = Out(META + "/status", "str", 0, "ok or no_moving_bar", origin=OURS)
META_REASON = Out(META + "/reason", "str", 0, "why nothing was sectioned ('' otherwise)", origin=OURS)
CROSSING_SOURCE = Out(META + "/crossing_source", "str", 0, "'movie <.npy path>' or 'pickle <.pkl path>'",
                      required=False, origin=OURS)
SWEEP_LAYOUT_SOURCE = Out(META + "/sweep_layout_source", "str", 0, "the JSON and frame count the sweeps come from",
                          required=False, origin=OURS)
META_DIRECTION_LIST = Out(META + "/direction_list", "f", 1, "directions of the sweeps", required=False, origin=OURS,
                          units="deg", frame=STIMULUS)
META_ANGLE_CONVENTION = Out(META + "/angle_convention", "str", 0, "how the directions are measured", required=False,
                            origin=OURS, frame=STIMULUS)
META_N_REPETITIONS = Out(META + "/n_repetitions", "i", 0, "repetitions of the directions", required=False,
                         origin=OURS)
SWEEP_SEGMENTS = Out(META + "/sweep_segments", "i", 2, "(n_trials, 2) [start, end) of each sweep, movie-relative",
                     required=False, origin=OURS, units=FRAMES)
SWEEP_LEAD_IN = Out(META + "/sweep_lead_in_frames", "i", 0, "movie frame at which the first trial starts",
                    required=False, origin=OURS, units=FRAMES)
N_UNITS_SECTIONED = Out(META + "/n_units_sectioned", "i", 0, "units sectioned by direction", required=False,
                        origin=OURS)
N_UNITS_SKIPPED = Out(META + "/n_units_skipped", "i", 0, "units skipped (each with its reason in its features)",
                      required=False, origin=OURS)

OUTPUTS = FRAME_OUTPUTS + REGISTRATION_OUTPUTS + (
    LAB_DIRECTION_LIST, N_DIRECTIONS, N_REPETITIONS, PADDING_FRAMES, CELL_CENTER_ROW, CELL_CENTER_COL, TRIALS,
    SECTION_BOUNDS, TRIALS_SAMPLES, SECTION_BOUNDS_SAMPLES, CELL_CENTER_SOURCE, SECTION_ANGLE_CONVENTION,
    SECTION_FRAME, TRIALS_UNIT, STATUS, REASON, PREFERRED, DIRECTION_LIST, SPIKE_COUNTS, SPIKE_COUNTS_PER_TRIAL,
    DSI_VECTOR, DSI_CLASSIC, OSI, P_VALUE, N_SPIKES, N_PERMUTATIONS, MOVIE, META_STATUS, META_REASON,
    CROSSING_SOURCE, SWEEP_LAYOUT_SOURCE, META_DIRECTION_LIST, META_ANGLE_CONVENTION, META_N_REPETITIONS,
    SWEEP_SEGMENTS, SWEEP_LEAD_IN, N_UNITS_SECTIONED, N_UNITS_SKIPPED,
)
