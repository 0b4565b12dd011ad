"""The AWS providers: ``aws-login``, ``aws-secrets`` and ``aws-parameter-store``.

Inputs and outputs are Pulumi ESC's (``shared/spec/providers.md``), so a definition written
for Pulumi Cloud opens unchanged::

    values:
      aws:
        login:
          fn::open::aws-login:
            oidc:
              roleArn: arn:aws:iam::123456789012:role/esc
              sessionName: esc-pulumi
        secrets:
          fn::open::aws-secrets:
            region: us-west-2
            login: ${aws.login}
            get:
              api-key: {secretId: prod/api-key}
      pulumiConfig:
        apiKey: ${aws.secrets.api-key}

They are published through the ``esc_pulumi.providers`` entry-point group (``pyproject.toml``),
so every default :class:`esc_pulumi.esc.ProviderRegistry` finds them. They run on boto3, the
``aws`` extra (``pip install 'esc_pulumi[aws]'``); this module imports it only when a provider
opens, so ``esc-pulumi check`` validates their inputs offline, without boto3 and without a call.

The credentials of a login never leave their secret wrappers: the whole ``aws-login`` and
``aws-secrets`` outputs are secret, :class:`AwsCredentials` hides its fields from ``repr``, the
SDK's debug logging is silenced during a call, and a failure is one diagnostic naming the
service and what failed (``aws-secrets: get "api-key": ResourceNotFoundException: ...``) with
every credential and secret input masked.

Endpoints follow boto3's conventions (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_STS``,
``AWS_ENDPOINT_URL_SECRETS_MANAGER``, ``AWS_ENDPOINT_URL_SSM``, or ``endpoint_url`` in the
AWS config file): pointing the providers at an emulator is a setting.
"""
from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..durations import parse_duration
from ..esc import Provider, ProviderError, Value, schema, to_plain
from . import _aws_sdk as sdk
from ._hygiene import scrub, secret_texts

log = logging.getLogger(__name__)

__all__ = [
    "TOKEN_ENV",
    "TOKEN_FILE_ENV",
    "AwsCredentials",
    "AwsLogin",
    "AwsParameterStore",
    "AwsSecrets",
    "OidcTokenRequest",
    "TokenSource",
    "environment_token",
]

# Where the embedded engine takes an OIDC token from: the opener supplies it (a CI's OIDC
# token, a file); the file:// backend never issues one itself.
TOKEN_ENV = "ESC_PULUMI_OIDC_TOKEN"
TOKEN_FILE_ENV = "ESC_PULUMI_OIDC_TOKEN_FILE"

# STS's own bounds for DurationSeconds (a role's maximum session may be lower).
_MIN_DURATION = 15 * 60
_MAX_DURATION = 12 * 3600
_DEFAULT_DURATION = "2h"
# STS is global: this region is used when boto3's configuration names none.
_STS_DEFAULT_REGION = "us-east-1"

# -- schemas ------------------------------------------------------------------------------------

# A Go duration (time.ParseDuration): "2h", "1h30m", "90m", "1.5h".
GO_DURATION = r"^[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$"

_CREDENTIALS = {
    "type": "object",
    "properties": {
        "accessKeyId": {"type": "string", "minLength": 1, "secret": True},
        "secretAccessKey": {"type": "string", "minLength": 1, "secret": True},
        "sessionToken": {"type": "string", "secret": True},
    },
    "required": ["accessKeyId", "secretAccessKey"],
}

LOGIN_INPUTS = schema.Schema.from_json(
    {
        "type": "object",
        "properties": {
            "static": _CREDENTIALS,
            "oidc": {
                "type": "object",
                "properties": {
                    "roleArn": {"type": "string", "pattern": r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"},
                    # STS's RoleSessionName: 2 to 64 of these characters.
                    "sessionName": {"type": "string", "pattern": r"^[\w+=,.@-]{2,64}$"},
                    "duration": {"type": "string", "pattern": GO_DURATION, "default": _DEFAULT_DURATION},
                    "policyArns": {"type": "array", "items": {"type": "string"}},
                    "subjectAttributes": {
                        "type": "array",
                        "items": {"type": "string", "enum": [
                            "rootEnvironment.name", "currentEnvironment.name", "pulumi.user.login",
                            "pulumi.organization.login",
                        ]},
                    },
                },
                "required": ["roleArn", "sessionName"],
            },
        },
        # Exactly one way to log in.
        "maxProperties": 1,
        "oneOf": [{"required": ["static"]}, {"required": ["oidc"]}],
    }
)

LOGIN_OUTPUT = schema.Schema.from_json(
    {
        "type": "object",
        "properties": {
            "accessKeyId": {"type": "string"},
            "secretAccessKey": {"type": "string"},
            "sessionToken": {"type": "string"},
        },
        "required": ["accessKeyId", "secretAccessKey", "sessionToken"],
        "secret": True,
    }
)

SECRETS_INPUTS = schema.Schema.from_json(
    {
        "type": "object",
        "properties": {
            "region": {"type": "string", "minLength": 1},
            "login": _CREDENTIALS,
            "get": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "secretId": {"type": "string", "minLength": 1},
                        "versionId": {"type": "string"},
                        "versionStage": {"type": "string"},
                    },
                    "required": ["secretId"],
                },
            },
        },
        "required": ["region", "login", "get"],
    }
)

PARAMETERS_INPUTS = schema.Schema.from_json(
    {
        "type": "object",
        "properties": {
            "region": {"type": "string", "minLength": 1},
            "login": _CREDENTIALS,
            "get": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "decrypt": {"type": "boolean"},
                    },
                    "required": ["name"],
                },
            },
        },
        "required": ["region", "login", "get"],
    }
)

# One string per name under ``get``.
VALUES_OUTPUT = schema.Schema.from_json({"type": "object", "additionalProperties": {"type": "string"}})


# -- credentials ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class AwsCredentials:
    """An AWS key pair (and session token): what ``aws-login`` returns and the other
    providers take as ``login``. Its ``repr`` never shows a field.

    Example::

        creds = AwsCredentials.from_login({"accessKeyId": "AKIA...", "secretAccessKey": "..."})
        repr(creds)    # 'AwsCredentials([secret])'
    """

    access_key_id: str
    secret_access_key: str
    session_token: str = ""

    def __repr__(self) -> str:
        return "AwsCredentials([secret])"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # not picklable: a pickle is a copy nobody guards
        raise TypeError("AwsCredentials cannot be pickled")

    @classmethod
    def from_login(cls, login: Mapping[str, Any]) -> "AwsCredentials":
        """From the plain ``{accessKeyId, secretAccessKey, sessionToken?}`` object."""
        return cls(
            str(login["accessKeyId"]),
            str(login["secretAccessKey"]),
            str(login.get("sessionToken") or ""),
        )

    def plaintexts(self) -> tuple[str, ...]:
        """The texts that must never appear anywhere (for masking)."""
        return (self.access_key_id, self.secret_access_key, self.session_token)

    def output(self) -> dict[str, str]:
        """The ``aws-login`` output (``sessionToken`` is ``""`` for a key pair without one, so
        that ``${aws.login.sessionToken}`` always resolves, as it does with Pulumi's)."""
        return {
            "accessKeyId": self.access_key_id,
            "secretAccessKey": self.secret_access_key,
            "sessionToken": self.session_token,
        }


# -- OIDC tokens -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OidcTokenRequest:
    """What an OIDC token for one ``aws-login`` is for: a :data:`TokenSource` gets it.

    ``audience`` and ``subject`` are what Pulumi Cloud's issuer would put in the token
    (``aws:<org>``, ``pulumi:environments:org:<org>:env:<project>/<env>``, or with
    ``subject_attributes`` ``pulumi:environments:pulumi.organization.login:<org>:<attribute>:<value>...``),
    ``None`` where the execution context does not say (no organisation, no environment name).
    An issuer (``esc-pulumi serve --issuer-url``) signs them as they are; a source that only
    reads a token made elsewhere ignores them.
    """

    role_arn: str
    session_name: str
    audience: str | None = None
    subject: str | None = None
    subject_attributes: tuple[str, ...] = ()
    context: Mapping[str, Any] = field(default_factory=dict, repr=False)


# A token for a request, or None when the source has none (the login then fails, saying so).
TokenSource = Callable[[OidcTokenRequest], "str | None"]


def environment_token(request: OidcTokenRequest, environ: Mapping[str, str] | None = None) -> str | None:
    """The default :data:`TokenSource`: ``ESC_PULUMI_OIDC_TOKEN`` (the token itself), or
    ``ESC_PULUMI_OIDC_TOKEN_FILE`` (a file holding it, read at every open, so a CI that
    refreshes the file is followed); ``None`` when neither is set.

    Example::

        os.environ["ESC_PULUMI_OIDC_TOKEN_FILE"] = "/var/run/secrets/ci/oidc-token"
        environment_token(OidcTokenRequest("arn:aws:iam::123456789012:role/esc", "ci"))
    """
    env = os.environ if environ is None else environ
    token = env.get(TOKEN_ENV, "")
    path = env.get(TOKEN_FILE_ENV, "")
    if token and path:
        raise ProviderError(f"aws-login: oidc: set {TOKEN_ENV} or {TOKEN_FILE_ENV}, not both")
    if token:
        return token.strip()
    if not path:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeError) as e:
        reason = getattr(e, "strerror", None) or type(e).__name__
        problem = f"cannot read the OIDC token file {path} ({TOKEN_FILE_ENV}): {reason}"
    else:
        if text:
            return text
        problem = f"the OIDC token file {path} ({TOKEN_FILE_ENV}) is empty"
    raise ProviderError(f"aws-login: oidc: {problem}")


# What ``subjectAttributes`` may name (Pulumi's), and where each value is in the context.
SUBJECT_ATTRIBUTES: dict[str, tuple[tuple[str, ...], ...]] = {
    "rootEnvironment.name": (("rootEnvironment", "name"),),
    # The environment that holds the login; the root's when the opener does not say.
    "currentEnvironment.name": (("currentEnvironment", "name"), ("rootEnvironment", "name")),
    "pulumi.user.login": (("pulumi", "user", "login"),),
    "pulumi.organization.login": (("pulumi", "organization", "login"),),
}


def _oidc_request(oidc: Mapping[str, Any], context: Mapping[str, Any], defined_in: str | None = None
                  ) -> OidcTokenRequest:
    """The request for one login. The subject is Pulumi Cloud's: by default
    ``pulumi:environments:org:<org>:env:<project>/<env>``; with ``subjectAttributes``,
    ``pulumi:environments:pulumi.organization.login:<org>`` followed by ``:<attribute>:<value>``
    for each attribute, in order (``None`` when a value is not in the context).

    The environment is the one whose definition holds the login (``currentEnvironment``):
    the context's when it says, else ``defined_in`` (where the call's inputs are written),
    else the root environment being opened. Pulumi Cloud puts the root's name in the default
    subject, which is ``<yaml>`` when the Pulumi CLI opens a stack's environments (as an
    anonymous definition importing them); naming the login's own environment keeps the
    subject meaningful there."""
    if "currentEnvironment" not in context and defined_in:
        context = {**context, "currentEnvironment": {"name": defined_in}}
    org = _context_text(context, "pulumi", "organization", "login")
    env = _context_text(context, "currentEnvironment", "name") or _context_text(context, "rootEnvironment", "name")
    attributes = tuple(str(a) for a in oidc.get("subjectAttributes") or ())
    audience = subject = None
    if org and env:  # both are needed: the audience depends on the environment's project
        project, _, name = env.partition("@")[0].rpartition("/")  # no @revision or @tag
        project = project or "default"
        audience = org if project == "default" else f"aws:{org}"
        subject = f"pulumi:environments:org:{org}:env:{project}/{name}"
    if attributes and org:
        subject = f"pulumi:environments:pulumi.organization.login:{org}"
        for attribute in attributes:
            value = next(filter(None, (_context_text(context, *p) for p in SUBJECT_ATTRIBUTES.get(attribute, ()))),
                         None)
            if value is None:
                subject = None
                break
            subject += f":{attribute}:{value}"
    elif attributes:
        subject = None
    return OidcTokenRequest(
        role_arn=str(oidc["roleArn"]),
        session_name=str(oidc["sessionName"]),
        audience=audience,
        subject=subject,
        subject_attributes=attributes,
        context=context,
    )


def _defined_in(inputs: Value) -> str | None:
    """The environment whose definition holds the call's inputs (the range of the expression
    that produced them), or None when the engine does not say."""
    where = getattr(getattr(getattr(inputs, "defn", None), "range", None), "environment", None)
    return where if isinstance(where, str) else None


def _context_text(context: Mapping[str, Any], *path: str) -> str | None:
    node: Any = context
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node if isinstance(node, str) and node and node != "<yaml>" else None


# -- the providers -----------------------------------------------------------------------------------


def _plain_inputs(inputs: Value) -> dict[str, Any]:
    data = to_plain(inputs)
    if not isinstance(data, dict):  # the schema admits only objects; this is a guard
        raise ProviderError("inputs must be an object")
    return data


class AwsLogin(Provider):
    """``fn::open::aws-login``: AWS credentials, from a key pair (``static``) or by
    exchanging an OIDC token for a role's session (``oidc``, STS ``AssumeRoleWithWebIdentity``).

    The token comes from ``token_source`` (default :func:`environment_token`:
    ``ESC_PULUMI_OIDC_TOKEN`` or ``ESC_PULUMI_OIDC_TOKEN_FILE``); an application, or a server
    that issues tokens itself, registers its own::

        registry = ProviderRegistry({"aws-login": AwsLogin(token_source=my_issuer)})
    """

    input_schema = LOGIN_INPUTS
    output_schema = LOGIN_OUTPUT
    secret = True

    def __init__(self, token_source: TokenSource | None = None) -> None:
        self.token_source: TokenSource = token_source or environment_token

    def __repr__(self) -> str:
        return "AwsLogin()"

    def open(self, inputs: Value, context: Mapping[str, Any]) -> Any:
        data = _plain_inputs(inputs)
        if "static" in data:
            # A key pair is its own login: nothing to call.
            return AwsCredentials.from_login(data["static"]).output()
        return self._oidc(data["oidc"], inputs, context)

    def _oidc(self, oidc: Mapping[str, Any], inputs: Value, context: Mapping[str, Any]) -> dict[str, str]:
        hidden = secret_texts(inputs)
        duration_text = str(oidc.get("duration") or _DEFAULT_DURATION)
        try:
            seconds = parse_duration(duration_text)
        except ValueError:
            seconds = -1.0
        if not _MIN_DURATION <= seconds <= _MAX_DURATION:
            raise sdk.fail(
                f'aws-login: oidc: duration "{duration_text}" must be a Go duration from 15m to 12h', hidden
            )
        request = _oidc_request(oidc, context, _defined_in(inputs))
        token = self.token_source(request)
        if not token:
            raise sdk.fail(_no_token_message(request), hidden)
        what = f'oidc: AssumeRoleWithWebIdentity "{request.role_arn}"'
        sdk.require_boto3("aws-login")
        with sdk.call_guard([*hidden, token]) as known:
            client, err = sdk.attempt(sdk.make_client, "aws-login", "sts", None, None, _STS_DEFAULT_REGION)
            if err is None:
                kwargs: dict[str, Any] = {
                    "RoleArn": request.role_arn,
                    "RoleSessionName": request.session_name,
                    "WebIdentityToken": token,
                    "DurationSeconds": int(seconds),
                }
                if oidc.get("policyArns"):
                    kwargs["PolicyArns"] = [{"arn": str(a)} for a in oidc["policyArns"]]
                log.debug("%s", scrub(f"aws-login: AssumeRoleWithWebIdentity {request.role_arn}", known))
                response, err = sdk.attempt(client.assume_role_with_web_identity, **kwargs)
            if err is not None:
                message = f"aws-login: {what}: {sdk.describe(err, known)}"
                del err  # the SDK's exception (holding the request) goes no further
                raise sdk.fail(message, known)
            got = response.get("Credentials") or {}
            creds = AwsCredentials(
                str(got.get("AccessKeyId", "")), str(got.get("SecretAccessKey", "")), str(got.get("SessionToken", ""))
            )
        if not creds.access_key_id or not creds.secret_access_key:
            raise ProviderError(f"aws-login: {what}: the response holds no credentials")
        return creds.output()


def _no_token_message(request: OidcTokenRequest) -> str:
    text = (
        f'aws-login: oidc: no OIDC token to exchange for role "{request.role_arn}": set {TOKEN_ENV} '
        f"to the token, or {TOKEN_FILE_ENV} to a file holding it (a CI's OIDC token, for "
        f"instance); the embedded engine issues no tokens itself"
    )
    if request.audience and request.subject:
        text += f' (Pulumi Cloud issues it for audience "{request.audience}", subject "{request.subject}")'
    return text


class _Fetcher(Provider):
    """What ``aws-secrets`` and ``aws-parameter-store`` share: region + login, then one
    request per entry of ``get``, stopping at the first failure (one diagnostic)."""

    name = ""
    service = ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def open(self, inputs: Value, context: Mapping[str, Any]) -> Any:
        data = _plain_inputs(inputs)
        creds = AwsCredentials.from_login(data["login"])
        region = str(data["region"])
        wanted: Mapping[str, Mapping[str, Any]] = data.get("get") or {}
        out: dict[str, Any] = {}
        if not wanted:
            return out
        sdk.require_boto3(self.name)
        with sdk.call_guard([*creds.plaintexts(), *secret_texts(inputs)]) as known:
            client, err = sdk.attempt(sdk.make_client, self.name, self.service, region, creds)
            if err is not None:
                message = f'{self.name}: region "{region}": {sdk.describe(err, known)}'
                del err
                raise sdk.fail(message, known)
            for key, request in wanted.items():
                log.debug("%s: get %r", self.name, key)  # (object keys are never secret)
                value, err = sdk.attempt(self.fetch, client, request)
                if err is not None:
                    message = f'{self.name}: get "{key}": {sdk.describe(err, known)}'
                    del err
                    raise sdk.fail(message, known)
                out[key] = value
                if isinstance(value, Value) and value.secret:
                    known.append(value.repr)  # a later failure's text must not quote it either
                elif self.secret and isinstance(value, str):
                    known.append(value)
        return out

    def fetch(self, client: Any, request: Mapping[str, Any]) -> Any:  # pragma: no cover
        raise NotImplementedError


class AwsSecrets(_Fetcher):
    """``fn::open::aws-secrets``: Secrets Manager secrets by name or ARN (``secretId``),
    optionally a ``versionId`` or ``versionStage``. The output is secret: ``{<name>: <the
    SecretString>}``; a binary secret comes base64-encoded; a JSON secret stays a string
    (``fn::fromJSON`` reads it).

    Example::

        AwsSecrets().open(from_plain({"region": "us-east-1", "login": {...},
                                      "get": {"api": {"secretId": "prod/api-key"}}}), {})
    """

    name = "aws-secrets"
    service = "secretsmanager"
    input_schema = SECRETS_INPUTS
    output_schema = VALUES_OUTPUT
    secret = True

    def fetch(self, client: Any, request: Mapping[str, Any]) -> str:
        kwargs = {"SecretId": str(request["secretId"])}
        if request.get("versionId"):
            kwargs["VersionId"] = str(request["versionId"])
        if request.get("versionStage"):
            kwargs["VersionStage"] = str(request["versionStage"])
        response = client.get_secret_value(**kwargs)
        if response.get("SecretString") is not None:
            return str(response["SecretString"])
        return base64.b64encode(response.get("SecretBinary") or b"").decode("ascii")


class AwsParameterStore(_Fetcher):
    """``fn::open::aws-parameter-store``: Systems Manager parameters by ``name`` (which may
    end in ``:<version>`` or ``:<label>``). ``String`` and ``StringList`` values are plain
    (a list as the comma-separated string AWS returns); ``SecureString`` values are secret,
    decrypted only with ``decrypt: true``.

    Example::

        AwsParameterStore().open(from_plain({"region": "us-east-1", "login": {...},
                                             "get": {"db": {"name": "/prod/db", "decrypt": True}}}), {})
    """

    name = "aws-parameter-store"
    service = "ssm"
    input_schema = PARAMETERS_INPUTS
    output_schema = VALUES_OUTPUT
    secret = False

    def fetch(self, client: Any, request: Mapping[str, Any]) -> Any:
        response = client.get_parameter(Name=str(request["name"]), WithDecryption=request.get("decrypt") is True)
        parameter = response.get("Parameter") or {}
        value = str(parameter.get("Value", ""))
        if parameter.get("Type") == "SecureString":
            return Value(value, secret=True)
        return value
