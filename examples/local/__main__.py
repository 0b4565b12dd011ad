"""The webapp program: all of its configuration comes from ESC environments through esc_pulumi."""
import os
import stat

import pulumi

import esc_pulumi

# Stack file -> esc:environments -> file://envs -> pulumi config, os.environ and files.
loaded = esc_pulumi.load()

cfg = esc_pulumi.Config()          # like pulumi.Config(), but secret keys come back as secret Outputs
aws = pulumi.Config("aws")

database = cfg.require_object("database")
password = cfg.require("dbPassword")           # a secret Output: the key is secret
db_url = cfg.require_secret("dbUrl")


class Database(pulumi.CustomResource):
    """A stand-in resource: the fake engine (esc_pulumi.testing) or mocks record what it is given."""

    def __init__(self, name: str, props: dict, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("webapp:index:Database", name, props, opts)


db = Database(
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


# What esc_pulumi gave this run, for examples/run_program.py's report and the tests. Secret
# values stay secret Outputs, so the engine receives them wrapped and reports mask them.
def _secret_if(value: str, secret: bool) -> pulumi.Input[str]:
    return pulumi.Output.secret(value) if secret else value


pulumi.export(
    "escLoad",
    {
        "environments": list(loaded.environments),
        "backend": loaded.backend,
        "requests": loaded.requests,
        "secondLoadSame": esc_pulumi.load() is loaded,  # a second load() opens nothing
        "config": {
            key: {
                "value": _secret_if(value, key in loaded.secret_keys),
                "source": loaded.sources.get(key, "?"),
                "overridesEsc": key in loaded.overridden,
            }
            for key, value in loaded.config.items()
        },
        "environmentVariables": {
            name: _secret_if(value, name in loaded.secret_variables)
            for name, value in loaded.environment_variables.items()
        },
        "files": {
            name: {"path": path, "mode": oct(stat.S_IMODE(os.stat(path).st_mode))}
            for name, path in loaded.files.items()
        },
    },
)
