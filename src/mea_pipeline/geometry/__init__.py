"""Soma (soma_geometry) and receptive-field (rf_geometry) geometry: plain functions of arrays."""
