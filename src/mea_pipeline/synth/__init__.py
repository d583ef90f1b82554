"""Synthetic MCS CMOS-MEA recordings with ground truth, and their stimulus library.

Writes ``.cmcr`` + ``-.cmtr`` pairs in the layout McsPyDataTools reads (see
``docs/mcs-format.md``), a stimulus library (``playlist.csv``,
``movie_length.csv``, one JSON per movie, the dense-noise ``.npy``) and per recording a
ground-truth JSON + npz. The same :class:`SynthSpec` and recording ID give the same bytes.

What is simulated (details in the submodules):

* timing (:mod:`.timeline`): 4 start-up frame-sync pulses, then one pulse per display frame
  (~60.4 Hz) through the playlist, with the lab's padding rule; row 0 of the analog data is the
  light reference (mean screen level), row 1 the frame sync;
* cells (:mod:`.cells`): somas on electrodes, centre-surround receptive fields on the 15 x 15
  noise grid driving a linear-nonlinear-Poisson model, ON/OFF polarity, direction tuning under
  the moving bar, axons of ganglion cells pointing at one optic-nerve-head point;
* electrical images (:mod:`.templates`): biphasic soma spikes over a 7 x 7 footprint and a
  travelling axon signal, in sensor data of the first ``sensor_seconds``;
* the sorter output (:mod:`.cmtr`): Peaks mixing spikes (IncludePeak 1) with ~30 % sub-threshold
  peaks (IncludePeak 0), Unit Info, Source, RoiSTAs, Unmixing.

Moving bar: directions ``[0, 45, ..., 315]`` deg in that order within each repeat; 0 deg moves
toward +column (right), 90 deg toward +row (down). Geometry and the crossing rule are in the
movie's JSON ``generate_kwargs`` (:func:`.bar_geometry.bar_crossings` implements it).
"""

from .bar_geometry import bar_crossings
from .dataset import recording_ids, write_dataset, write_recording
from .library import write_stimulus_library
from .spec import PLAYLISTS, SynthSpec
from .truth import load_truth

__all__ = ["SynthSpec", "PLAYLISTS", "write_stimulus_library", "write_recording", "write_dataset",
           "load_truth", "recording_ids", "bar_crossings"]
