"""The pieces that keep plaintexts in: masking, the SDK log guard, credentials' repr, error
texts, and the small parsers of the AWS providers."""
from __future__ import annotations

import logging
import pickle
import threading
from pathlib import Path

import pytest

from esc_pulumi.esc import ProviderError, Value
from esc_pulumi.esc.values import from_plain
from esc_pulumi.providers import _aws_sdk as sdk
from esc_pulumi.providers._hygiene import guarded_sdk_logs, scrub, secret_texts
from esc_pulumi.durations import parse_duration
from esc_pulumi.providers.aws import AwsCredentials, OidcTokenRequest, environment_token


def test_scrub_masks_longest_first_and_leaves_tiny_texts() -> None:
    assert scrub("key abc-secret and abc", ["abc", "abc-secret"]) == "key [secret] and [secret]"
    assert scrub("a b ab", ["ab", "", "a"]) == "a b ab"  # under 3 characters: not masked


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record)


@pytest.fixture
def sdk_log():
    logger = logging.getLogger("botocore.esc_pulumi_test")
    handler = _Records()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield logger, handler.seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


def test_the_guard_drops_debug_and_masks_the_rest_during_a_call(sdk_log) -> None:
    logger, seen = sdk_log
    with guarded_sdk_logs(["botocore"], ["hunter2-key"]) as known:
        logger.debug("Response body: %s", "hunter2-key")
        logger.info("still chatty %s", "hunter2-key")
        known.append("value-received")
        try:
            raise ValueError("hunter2-key")
        except ValueError:
            logger.warning("retrying %s after %s", "hunter2-key", "value-received", exc_info=True)
    logger.debug("after the call: %s", "visible")
    assert [(r.levelname, r.getMessage()) for r in seen] == [
        ("WARNING", "retrying [secret] after [secret]"),
        ("DEBUG", "after the call: visible"),
    ]
    assert seen[0].exc_info is None  # the traceback could quote anything
    assert "hunter2" not in repr(known)


def test_the_guard_is_per_call_not_per_process(sdk_log) -> None:
    logger, seen = sdk_log
    inside, done = threading.Event(), threading.Event()

    def call() -> None:
        with guarded_sdk_logs(["botocore"], []):
            inside.set()
            done.wait(10)

    t = threading.Thread(target=call)
    t.start()
    inside.wait(10)
    logger.debug("the application's own request")  # another thread, not in a provider call
    done.set()
    t.join()
    assert [r.getMessage() for r in seen] == ["the application's own request"]


def test_secret_texts_follow_inherited_secrecy() -> None:
    v = from_plain({
        "plain": "visible",
        "leaf": Value("leaf-secret", secret=True),
        "box": Value({"inner": Value("inner-secret")}, secret=True),
        "list": [Value("item-secret", secret=True), "item-plain"],
        "unknown": Value(None, secret=True, unknown=True),
    })
    assert sorted(secret_texts(v)) == ["inner-secret", "item-secret", "leaf-secret"]


def test_credentials_never_show() -> None:
    creds = AwsCredentials("AKIAREPR000000000001", "repr-secret-key", "repr-token")
    assert repr(creds) == str(creds) == f"{creds}" == "AwsCredentials([secret])"
    assert "repr-" not in repr([creds, {"c": creds}])
    with pytest.raises(TypeError):
        pickle.dumps(creds)
    assert AwsCredentials.from_login({"accessKeyId": "a", "secretAccessKey": "b"}).output() == {
        "accessKeyId": "a", "secretAccessKey": "b", "sessionToken": "",
    }


def _client_error(code: str, message: str):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message}}, "GetSecretValue")


def test_error_texts() -> None:
    assert sdk.describe(_client_error("ResourceNotFoundException", "can't find it."), []) == (
        "ResourceNotFoundException: can't find it."
    )
    # AWS quoting the Authorization header: masked even for a key the provider does not know.
    quoted = "Authorization=AWS4-HMAC-SHA256 Credential=AKIAOTHER/20240101/us-east-1/sts/aws4_request, Signature=abc123"
    assert sdk.describe(_client_error("IncompleteSignature", quoted), []) == (
        "IncompleteSignature: Authorization=AWS4-HMAC-SHA256 Credential=[secret], Signature=[secret]"
    )
    # An XML body botocore could not parse for a JSON service: the error inside is read.
    xml = "<ErrorResponse><Error><Code>AccessDenied</Code><Message>no.</Message></Error></ErrorResponse>"
    assert sdk.describe(_client_error("403", xml), []) == "AccessDenied: no."
    assert sdk.describe(_client_error("502", "<html>Bad  gateway</html>"), []) == "HTTP 502: <html>Bad gateway</html>"
    long = sdk.describe(_client_error("Oops", "x" * 2000), [])
    assert len(long) == 500 and long.endswith("...")
    assert sdk.describe(ValueError("bad key-material-123"), ["key-material-123"]) == "ValueError: bad [secret]"


def test_attempt_keeps_the_sdk_exception_out_of_the_chain() -> None:
    def boom() -> None:
        raise RuntimeError("holds hunter2-key")

    _, err = sdk.attempt(boom)
    message = sdk.describe(err, ["hunter2-key"])
    del err
    e = sdk.fail(f"svc: {message}", [])
    assert str(e) == "svc: RuntimeError: holds [secret]"
    assert e.__cause__ is None and e.__context__ is None


@pytest.mark.parametrize(
    "text, seconds",
    [("2h", 7200), ("1h30m", 5400), ("90m", 5400), ("1.5h", 5400), ("15m", 900), ("0", 0), ("+10s", 10),
     ("500ms", 0.5), ("1h0m0.5s", 3600.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2", "h", "2 hours", "1h-5m", "1d"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_environment_token(tmp_path: Path) -> None:
    request = OidcTokenRequest("arn:aws:iam::123456789012:role/r", "sess")
    assert environment_token(request, {}) is None
    assert environment_token(request, {"ESC_PULUMI_OIDC_TOKEN": " tok \n"}) == "tok"
    f = tmp_path / "token"
    f.write_text("file-token\n")
    assert environment_token(request, {"ESC_PULUMI_OIDC_TOKEN_FILE": str(f)}) == "file-token"
    f.write_text("refreshed-token")  # read at every open
    assert environment_token(request, {"ESC_PULUMI_OIDC_TOKEN_FILE": str(f)}) == "refreshed-token"
    with pytest.raises(ProviderError, match="not both"):
        environment_token(request, {"ESC_PULUMI_OIDC_TOKEN": "a", "ESC_PULUMI_OIDC_TOKEN_FILE": str(f)})
    with pytest.raises(ProviderError, match="cannot read the OIDC token file"):
        environment_token(request, {"ESC_PULUMI_OIDC_TOKEN_FILE": str(tmp_path)})  # a directory
