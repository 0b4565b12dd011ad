"""The Pulumi side of the files: the project and its stack files (:mod:`.project`), the
settings (:mod:`.settings`), what ``load()`` opens (:mod:`.plan`) and how ``pulumiConfig``
becomes config as the Pulumi CLI does it (:mod:`.mapping`)."""
