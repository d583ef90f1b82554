"""QC figures and key numbers of a recording, drawn from its output file."""
