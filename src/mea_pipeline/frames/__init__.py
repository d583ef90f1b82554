"""The frames angles and positions are given in, and what each one's axes are.

ap_tracking works on the electrical image (electrode frame), rf_geometry and dsgc on the projected
stimulus (stimulus frame). Both say "0 degrees = +column, 90 degrees = +row", but those are the
columns of different images: on a rig the stimulus may be rotated, scaled and mirrored against
the electrodes. Every stored angle carries a ``frame`` attribute naming one of these.
"""

ELECTRODE = "electrode"
STIMULUS = "stimulus"
RETINA = "retina"

FRAMES = {
    ELECTRODE: "electrical-image axes (eimage axis 1 = row, axis 2 = column, one electrode per step); "
               "angles: 0 deg = toward +column, 90 deg = toward +row (image rows grow downward)",
    STIMULUS: "projector-image axes (300 x 300 pixels, or the checkers of a noise movie); "
              "angles: 0 deg = toward +column (right on the screen), 90 deg = toward +row (down)",
    RETINA: "retinal orientation from the optic-nerve head and the sheet's Center_xy "
            "(dorsal, ventral, nasal, temporal)",
}
