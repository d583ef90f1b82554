"""The stimulus library and the playlist a recording was shown.

Fingerprint: the content of the library's tables and JSONs (movie arrays by size and mtime) and
the playlist name. Pre-flight opens the library and reads the playlist and its movie lengths;
what each step reads beyond that (trial layouts, movies) its own ``library_check`` declares.
"""

from __future__ import annotations

from ..errors import InputError
from .declaration import PATH, TEXT, ExternalInput, InputOption

DEFAULT_PLAYLIST = "play_optimization_set6_ipRGC_manual"


def _fingerprint(rec, config) -> dict:
    from ..stimulus_library import StimulusLibrary

    if config.stimuli is None:
        raise InputError("this step needs the stimulus library; pass --stimuli DIR (or stimuli = ... in --config)")
    return {"folder": str(config.stimuli), "content": StimulusLibrary(config.stimuli).fingerprint(),
            "playlist": config.playlist}


def open_playlist(report, config):
    """The library and the playlist's movies (unique, in order), or (None, []) after an error finding."""
    from ..stimulus_library import StimulusLibrary

    if config.stimuli is None:
        report.error("the selected steps read the stimulus library; pass --stimuli DIR (or stimuli = ... in --config)")
        return None, []
    library = report.attempt(StimulusLibrary, config.stimuli)
    movies = report.attempt(library.playlist, config.playlist) if library else None
    if not movies or report.attempt(library.movie_lengths, movies) is None:
        return None, []
    return library, list(dict.fromkeys(movies))


STIMULI = ExternalInput(
    "stimuli", "stimulus library (--stimuli) and playlist (--playlist)", fingerprint=_fingerprint,
    options=(InputOption("stimuli", PATH, "Stimulus library folder"),
             InputOption("playlist", TEXT, "Playlist name in the library's playlist.csv", DEFAULT_PLAYLIST)),
    check_batch=lambda report, config: open_playlist(report, config) and None)
