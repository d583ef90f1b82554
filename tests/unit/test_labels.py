"""Step 9 library: manual cell-type labels from the lab's class folders, and the synthetic folder."""

import struct
import zlib
from pathlib import Path

import pytest

from mea_pipeline.errors import InputError
from mea_pipeline.labels import NO_LABEL, VOCABULARY, listing_fingerprint, read_labels
from mea_pipeline.synth.label_folder import NESTED_FOLDER, write_label_folder

RECORDING = "2024.09.04-15.22.08-Rec"


def put(root: Path, relative: str) -> Path:
    path = root / RECORDING / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG placeholder bytes")
    return path


def test_precedence_recursion_and_file_name_pattern(tmp_path):
    put(tmp_path, f"RGC/{RECORDING}_unit1.png")
    put(tmp_path, f"RGC/{RECORDING}_unit2.png")
    put(tmp_path, f"AC/{RECORDING}_unit2.png")                  # RGC then AC -> ac
    for folder in ("RGC", "Other", "Unknown"):
        put(tmp_path, f"{folder}/{RECORDING}_unit3.png")        # Unknown is last -> unknown
    put(tmp_path, f"AC/{RECORDING}_unit4.png")
    put(tmp_path, f"Other/{RECORDING}_unit4.png")               # Other beats AC
    put(tmp_path, f"RGC/sorted/deeper/{RECORDING}_unit5.png")   # recursive search
    put(tmp_path, "Other/another_prefix_UNIT6.PNG")             # case-insensitive, prefix not checked
    put(tmp_path, "RGC/overview.png")                           # no unit number: ignored
    put(tmp_path, f"RGC/{RECORDING}_unit8.png.bak")             # not ending in .png: ignored

    result = read_labels(tmp_path, RECORDING, [1, 2, 3, 4, 5, 6, 7])

    assert result.labels == {1: "rgc", 2: "ac", 3: "unknown", 4: "other", 5: "rgc", 6: "other", 7: NO_LABEL}
    assert result.folder == tmp_path / RECORDING and result.folder_found
    assert result.n_files == 10 and result.n_labelled == 6
    assert result.counts == {"rgc": 2, "ac": 1, "other": 2, "unknown": 1, "no_label": 1}
    assert len(result.warnings) == 1 and "2 file(s)" in result.warnings[0] and "RGC/overview.png" in result.warnings[0]


def test_labels_for_units_the_recording_lacks_are_reported(tmp_path):
    put(tmp_path, f"RGC/{RECORDING}_unit1.png")
    put(tmp_path, f"AC/{RECORDING}_unit99.png")
    result = read_labels(tmp_path, RECORDING, [1, 2])
    assert result.labels == {1: "rgc", 2: NO_LABEL}
    assert result.warnings == [f"{tmp_path / RECORDING} labels unit number(s) the recording does not have: 99"]


def test_class_folder_names_are_case_sensitive(tmp_path):
    put(tmp_path, f"rgc/{RECORDING}_unit1.png")
    result = read_labels(tmp_path, RECORDING, [1])
    assert result.labels == {1: NO_LABEL} and result.folder_found and result.n_files == 0
    assert any("ignored folder(s) rgc" in w for w in result.warnings)
    assert any("holds no '*_unit<N>.png' file" in w for w in result.warnings)


def test_missing_folder_gives_no_label_and_a_warning(tmp_path):
    result = read_labels(tmp_path, RECORDING, [3, 1, 2])
    assert list(result.labels.items()) == [(3, NO_LABEL), (1, NO_LABEL), (2, NO_LABEL)]
    assert not result.folder_found and result.n_files == 0 and result.n_labelled == 0
    assert result.counts == {**dict.fromkeys(VOCABULARY, 0), "no_label": 3}
    assert len(result.warnings) == 1 and str(tmp_path / RECORDING) in result.warnings[0]


def test_listing_fingerprint_follows_the_folder(tmp_path):
    assert listing_fingerprint(tmp_path, RECORDING) == "absent"
    put(tmp_path, f"RGC/{RECORDING}_unit1.png")
    first = listing_fingerprint(tmp_path, RECORDING)
    assert first != "absent" and listing_fingerprint(tmp_path, RECORDING) == first
    added = put(tmp_path, f"AC/{RECORDING}_unit2.png")
    second = listing_fingerprint(tmp_path, RECORDING)
    assert second != first
    moved = tmp_path / RECORDING / "Other" / added.name
    moved.parent.mkdir()
    added.rename(moved)
    assert listing_fingerprint(tmp_path, RECORDING) not in (first, second)


def _png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Check a PNG's signature, chunk CRCs and IDAT size; return (width, height, raw scanlines)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, {}
    while position < len(data):
        (length,) = struct.unpack(">I", data[position:position + 4])
        kind, body = data[position + 4:position + 8], data[position + 8:position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length:position + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks[kind] = body
        position += 12 + length
    assert list(chunks) == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 0)
    raw = zlib.decompress(chunks[b"IDAT"])
    assert len(raw) == height * (width + 1)
    return width, height, raw


UNITS = [{"unit_id": f"unit_{n:03d}", "unit_number": n, "is_rgc": n % 3 != 0} for n in (1, 2, 3, 5, 6, 8, 9, 10, 12)]


def test_synthetic_label_folder_round_trip(tmp_path):
    truth = write_label_folder(tmp_path, RECORDING, UNITS)
    assert set(truth) == {u["unit_id"] for u in UNITS}
    assert set(truth.values()) == set(VOCABULARY)
    assert truth["unit_001"] == "unknown"  # first RGC unit, also filed under Unknown
    assert truth["unit_012"] == NO_LABEL   # last non-RGC unit has no image

    result = read_labels(tmp_path, RECORDING, [u["unit_number"] for u in UNITS])
    assert {f"unit_{n:03d}": label for n, label in result.labels.items()} == truth
    assert result.warnings == [] and result.n_labelled == len(UNITS) - 1

    images = sorted((tmp_path / RECORDING).rglob("*.png"))
    assert any(NESTED_FOLDER in path.parts for path in images)
    assert all(path.name.startswith(f"{RECORDING}_unit") for path in images)
    assert all(_png_pixels(path.read_bytes())[:2] == (8, 8) for path in images)
    assert len({path.read_bytes() for path in images if "Unknown" not in path.parts}) == len(UNITS) - 1

    again = tmp_path / "again"
    assert write_label_folder(again, RECORDING, UNITS) == truth
    def contents(folder):
        return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*.png")}

    assert contents(again / RECORDING) == contents(tmp_path / RECORDING)  # deterministic


def test_synthetic_label_folder_refuses_to_mix_with_old_images(tmp_path):
    write_label_folder(tmp_path, RECORDING, UNITS)
    with pytest.raises(InputError, match="already exists"):
        write_label_folder(tmp_path, RECORDING, UNITS[:3])
    truth = write_label_folder(tmp_path, RECORDING, UNITS[:3], overwrite=True)
    assert read_labels(tmp_path, RECORDING, [1, 2, 3]).labels == {1: truth["unit_001"], 2: truth["unit_002"],
                                                                  3: truth["unit_003"]}
    assert read_labels(tmp_path, RECORDING, [1, 2, 3]).warnings == []


def test_synthetic_folder_with_only_ganglion_cells(tmp_path):
    units = [{"unit_id": "unit_004", "unit_number": 4, "is_rgc": True},
             {"unit_id": "unit_007", "unit_number": 7, "is_rgc": True}]
    assert write_label_folder(tmp_path, RECORDING, units) == {"unit_004": "unknown", "unit_007": NO_LABEL}
    assert read_labels(tmp_path, RECORDING, [4, 7]).labels == {4: "unknown", 7: NO_LABEL}
