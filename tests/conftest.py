"""Suite-wide settings."""
import os

from hypothesis import settings

# Property tests explore the same examples on every run, so CI never fails on a fresh random
# draw that no one has seen; set HYPOTHESIS_PROFILE=explore to search afresh.
settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


# Variables that would leak a developer's setup into the tests (the suites' autouse fixtures
# remove them): one list, so a new setting is scrubbed everywhere at once.
DEVELOPER_SETTINGS = (
    "ESC_PULUMI_BACKEND",
    "ESC_PULUMI_ORGANIZATION",
    "ESC_PULUMI_PASSPHRASE",
    "ESC_PULUMI_KEY_FILE",
    "ESC_PULUMI_USER",
    "ESC_PULUMI_APPLIED",
    "ESC_PULUMI_TIMEOUT",
    "PULUMI_ACCESS_TOKEN",
    "PULUMI_BACKEND_URL",
    "PULUMI_STACK",
    "PULUMI_CONFIG",
    "PULUMI_CONFIG_SECRET_KEYS",
    "PULUMI_CONFIG_PASSPHRASE",
    "PULUMI_CONFIG_PASSPHRASE_FILE",
)
