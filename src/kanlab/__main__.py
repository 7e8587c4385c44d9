"""``python -m kanlab ...`` runs the `kanlab` command."""
import sys

from .cli import main

sys.exit(main())
