"""Training the AP-tracking CNN (``mea-pipeline train-ap-model``), apart from the package the ap_tracking step runs.

``training_data`` (synthetic scenes and labelled cubes), ``broad_units`` (the training
distribution), ``heldout`` (a second generator, never trained on), ``validation_sets`` (the sets
the tracker is checked on), ``training`` (the fit and the choice of epoch). It builds units from
:mod:`mea_pipeline.synth`; :mod:`mea_pipeline.ap_tracking`, which the ap_tracking step runs, does not.
"""
