"""Keys and ciphertexts: AES-GCM keys from a passphrase or a key file (:mod:`.crypto`), and
the in-place encryption of ``fn::secret`` plaintext in definitions (:mod:`.definitions`)."""
