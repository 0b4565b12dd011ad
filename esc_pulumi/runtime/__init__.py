"""The running program: config, environment variables and files applied in place
(:mod:`.apply`, :mod:`.projection`), and :class:`~.config.Config` / ``provider_args``."""
