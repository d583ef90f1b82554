"""AP tracking (step ap_tracking): the lab's 3-D CNN run densely, post-processing, pathways, optic-nerve head."""
