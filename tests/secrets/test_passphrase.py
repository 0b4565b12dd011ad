"""Pulumi's passphrase secrets manager (esc_pulumi.secrets.passphrase), held to the spec's test
vector and to a from-scratch reading of the spec's format (hashlib's PBKDF2, AES-GCM)."""
from __future__ import annotations

import base64
import hashlib
import traceback

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from esc_pulumi.errors import ConfigurationError, DecryptionError
from esc_pulumi.secrets.passphrase import (
    ITERATIONS,
    PassphraseCrypter,
    is_passphrase_stack,
    new_salt_state,
    read_passphrase,
)

# From the Pulumi CLI's own tests (spec: "The passphrase secrets manager").
SALT_STATE = "v1:fozI5u6B030=:v1:F+6ZduKKd8G0/V7L:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ=="


@pytest.fixture(scope="module")
def crypter() -> PassphraseCrypter:
    return PassphraseCrypter.from_salt_state(SALT_STATE, "password", where="Pulumi.dev.yaml")


def _reference_key(passphrase: str, salt_state: str) -> bytes:
    salt = base64.b64decode(salt_state.split(":")[1])
    return hashlib.pbkdf2_hmac("sha256", passphrase.encode(), salt, 1_000_000, 32)


def _reference_decrypt(key: bytes, ciphertext: str) -> str:
    version, nonce, sealed = ciphertext.split(":")
    assert version == "v1"
    return AESGCM(key).decrypt(base64.b64decode(nonce), base64.b64decode(sealed), None).decode()


def test_the_vector_decrypts_with_password(crypter):
    check = SALT_STATE.split(":", 2)[2]
    assert crypter.decrypt(check) == "pulumi"
    assert ITERATIONS == 1_000_000


def test_password123_is_incorrect():
    with pytest.raises(DecryptionError) as info:
        PassphraseCrypter.from_salt_state(SALT_STATE, "password123", where="stacks/Pulumi.dev.yaml")
    message = str(info.value)
    assert "incorrect passphrase" in message and "stacks/Pulumi.dev.yaml" in message
    assert "PULUMI_CONFIG_PASSPHRASE" in message and "PULUMI_CONFIG_PASSPHRASE_FILE" in message
    assert "password123" not in message


def test_ciphertexts_follow_the_spec_format(crypter):
    token = crypter.encrypt("hunter2 ünïcode\n")
    version, nonce, sealed = token.split(":")
    assert version == "v1" and len(base64.b64decode(nonce)) == 12
    assert len(base64.b64decode(sealed)) == len("hunter2 ünïcode\n".encode()) + 16
    # What another implementation of the spec makes of it.
    key = _reference_key("password", SALT_STATE)
    assert _reference_decrypt(key, token) == "hunter2 ünïcode\n"
    # ... and the other way round.
    nonce = b"\x01" * 12
    theirs = "v1:" + base64.b64encode(nonce).decode() + ":" + base64.b64encode(
        AESGCM(key).encrypt(nonce, b"from elsewhere", None)).decode()
    assert crypter.decrypt(theirs) == "from elsewhere"


def test_fresh_nonce_every_time(crypter):
    a, b = crypter.encrypt("same"), crypter.encrypt("same")
    assert a != b and crypter.decrypt(a) == crypter.decrypt(b) == "same"


def test_key_never_in_repr_or_equality(crypter):
    key = _reference_key("password", SALT_STATE)
    text = repr(crypter)
    assert "password" not in text and key.hex() not in text and repr(key) not in text
    assert SALT_STATE in text
    assert crypter == PassphraseCrypter(SALT_STATE, "Pulumi.dev.yaml", b"\x00" * 32)  # the key is not compared


def test_decrypt_errors_hold_no_data(crypter):
    other = PassphraseCrypter.from_salt_state(new_salt_state("another"), "another", where="x")
    foreign = other.encrypt("top-secret-plaintext")
    for bad in [foreign, "v1:AAAA:BBBB", "v2:x:y", "not a ciphertext", "v1:!!:??", ""]:
        with pytest.raises(DecryptionError) as info:
            crypter.decrypt(bad)
        rendered = "".join(traceback.format_exception(info.value))
        assert "top-secret-plaintext" not in rendered
        assert bad == "" or bad not in str(info.value)
        assert info.value.__cause__ is None


def test_new_salt_state_round_trip():
    state = new_salt_state("s3cret")
    parts = state.split(":")
    assert parts[0] == "v1" and len(base64.b64decode(parts[1])) == 8 and parts[2] == "v1"
    c = PassphraseCrypter.from_salt_state(state, "s3cret", where="f")
    assert c.decrypt(c.encrypt("x")) == "x"
    assert _reference_decrypt(_reference_key("s3cret", state), state.split(":", 2)[2]) == "pulumi"
    with pytest.raises(DecryptionError):
        PassphraseCrypter.from_salt_state(state, "s3cret ", where="f")


def test_from_stack_provider_rules():
    env = {"PULUMI_CONFIG_PASSPHRASE": "password"}
    assert PassphraseCrypter.from_stack({"secretsprovider": "awskms://alias/x", "encryptionsalt": SALT_STATE},
                                        env, where="f") is None
    assert PassphraseCrypter.from_stack({}, env, where="f") is None  # no salt: the CLI decides
    assert PassphraseCrypter.from_stack({"secretsprovider": "passphrase"}, env, where="f") is None
    c = PassphraseCrypter.from_stack({"secretsprovider": "passphrase", "encryptionsalt": SALT_STATE}, env, where="f")
    assert c is not None and c.decrypt(c.encrypt("ok")) == "ok"
    assert is_passphrase_stack({}) and not is_passphrase_stack({"secretsprovider": "gcpkms://k"})
    with pytest.raises(DecryptionError, match="PULUMI_CONFIG_PASSPHRASE"):
        PassphraseCrypter.from_stack({"encryptionsalt": SALT_STATE}, {}, where="Pulumi.dev.yaml")
    for bad in ["v1:", "v1:fozI5u6B030=", "v2:fozI5u6B030=:v1:a:b", "v1:@@:v1:a:b", 42]:
        with pytest.raises(ConfigurationError, match="encryptionsalt"):
            PassphraseCrypter.from_stack({"encryptionsalt": bad}, env, where="f")


def test_read_passphrase(tmp_path):
    f = tmp_path / "pp"
    f.write_text("  password\r\n", encoding="utf-8")
    assert read_passphrase({"PULUMI_CONFIG_PASSPHRASE_FILE": str(f)}) == "password"
    assert read_passphrase({"PULUMI_CONFIG_PASSPHRASE_FILE": "pp"}, base_dir=tmp_path) == "password"
    # The variable wins over the file, even empty.
    assert read_passphrase({"PULUMI_CONFIG_PASSPHRASE": "", "PULUMI_CONFIG_PASSPHRASE_FILE": str(f)}) == ""
    assert read_passphrase({}) is None
    with pytest.raises(ConfigurationError, match="PULUMI_CONFIG_PASSPHRASE_FILE"):
        read_passphrase({"PULUMI_CONFIG_PASSPHRASE_FILE": str(tmp_path / "missing")})
    c = PassphraseCrypter.from_stack({"encryptionsalt": SALT_STATE}, {"PULUMI_CONFIG_PASSPHRASE_FILE": "pp"},
                                     where="f", base_dir=tmp_path)
    assert c is not None
