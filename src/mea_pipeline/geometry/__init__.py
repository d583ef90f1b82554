"""Soma (step 6) and receptive-field (step 7) geometry: plain functions of arrays."""
