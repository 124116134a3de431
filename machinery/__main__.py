"""``python -m machinery``: the ``machinery`` command."""

from __future__ import annotations

import sys

from machinery.cli import main

sys.exit(main())
