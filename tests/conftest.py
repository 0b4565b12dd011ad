"""Suite-wide settings."""
import os

from hypothesis import settings

# Property tests explore the same examples on every run, so CI never fails on a fresh random
# draw that no one has seen; set HYPOTHESIS_PROFILE=explore to search afresh.
settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
