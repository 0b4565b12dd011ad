"""``python -m esc_pulumi.server serve ...``: the serve commands on their own."""
import sys

from ..cli.serve import main

sys.exit(main())
