"""Direction selectivity under the moving bar (step 11): bar crossings, sectioning, DSI."""
