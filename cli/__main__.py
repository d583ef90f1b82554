"""``python -m mea_pipeline.cli ...`` = ``mea-pipeline ...``."""

import sys

from .main import main

sys.exit(main())
