"""``python -m esc_pulumi.server serve ...``: the serve commands on their own."""
import sys

from .cli import main

sys.exit(main())
