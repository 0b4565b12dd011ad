"""The payments program: config from Pulumi Cloud ESC environments (see Pulumi.prod.yaml)."""
import pulumi

import esc_pulumi

esc_pulumi.load()  # under `pulumi up` on Pulumi Cloud: the CLI already applied `environment:`

cfg = esc_pulumi.Config()
pulumi.export("replicas", cfg.require_int("replicas"))
pulumi.export("logLevel", cfg.require("logLevel"))
pulumi.export("apiKey", cfg.require("apiKey"))   # a secret Output when the environment marks it secret

# Default providers never see config set from inside the program: pass it explicitly.
# import pulumi_aws as aws
# provider = aws.Provider("aws", **esc_pulumi.provider_args("aws"))
