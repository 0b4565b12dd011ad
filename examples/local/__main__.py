"""The webapp program: all of its configuration comes from ESC environments through esc_pulumi."""
import os

import pulumi

import esc_pulumi

# Stack file -> esc:environments -> file://envs -> pulumi config, os.environ and files.
esc_pulumi.load()

cfg = esc_pulumi.Config()          # like pulumi.Config(), but secret keys come back as secret Outputs
aws = pulumi.Config("aws")

database = cfg.require_object("database")
password = cfg.require("dbPassword")           # a secret Output: the key is secret
db_url = cfg.require_secret("dbUrl")


class Database(pulumi.CustomResource):
    """A stand-in resource: under mocks it records what it was given."""

    def __init__(self, name: str, props: dict, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("webapp:index:Database", name, props, opts)


Database(
    "db",
    {
        "host": database["host"],
        "port": database["port"],
        "password": password,
        "region": aws.require("region"),
        "tags": cfg.require_object("tags"),
    },
)

pulumi.export("appName", cfg.require("appName"))
pulumi.export("port", cfg.require_int("port"))
pulumi.export("debug", cfg.require_bool("debug"))
pulumi.export("replicas", cfg.require_int("replicas"))
pulumi.export("logLevel", cfg.require("logLevel"))
pulumi.export("region", aws.require("region"))
pulumi.export("database", database)
pulumi.export("tags", cfg.require_object("tags"))
pulumi.export("allowedCidrs", cfg.require_object("allowedCidrs"))
pulumi.export("maintenanceWindow", cfg.require("maintenanceWindow"))
pulumi.export("dbPassword", password)
pulumi.export("dbUrl", db_url)
pulumi.export("appStage", os.environ["APP_STAGE"])
with open(os.environ["APP_SETTINGS_FILE"], encoding="utf-8") as f:
    pulumi.export("settingsFile", f.read())
