"""AP tracking (step 10): the lab's 3-D CNN run densely, post-processing, pathways, optic-nerve head."""
