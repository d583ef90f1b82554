"""Direction selectivity under the moving bar (step dsgc): bar crossings, sectioning, DSI."""
