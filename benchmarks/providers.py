"""The AWS providers' cost: one open of a definition with ``aws-login`` (static) and
``aws-secrets`` (10 secrets) against moto's emulator on 127.0.0.1, split into

- time in boto3 and the emulator: creating the client (session, models, endpoint rules) and the
  10 ``GetSecretValue`` calls, measured where the providers hand over to boto3;
- our overhead: everything else in the open (parsing, evaluation, schema checks, the log
  guard, masking, building the secret value tree).

Target: our overhead is at most 10% of the open (warm: the process's first open also loads
boto3's models, reported on its own line). For reference, the same calls made with boto3
alone, the way a script would (``boto3.client(...)`` then 10 gets), in the same run.

Usage: ``python benchmarks/providers.py [--repeat N]``
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from verdict import at_most

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REGION = "us-east-1"
SECRETS = 10
LOGIN = {"aws_access_key_id": "AKIABENCH00000000001", "aws_secret_access_key": "bench-secret-access-key"}

DEFINITION = (
    "values:\n"
    "  aws:\n"
    "    login:\n"
    "      fn::open::aws-login:\n"
    "        static:\n"
    f"          accessKeyId: {LOGIN['aws_access_key_id']}\n"
    f"          secretAccessKey: {{fn::secret: {LOGIN['aws_secret_access_key']}}}\n"
    "    secrets:\n"
    "      fn::open::aws-secrets:\n"
    f"        region: {REGION}\n"
    "        login: ${aws.login}\n"
    "        get:\n"
    + "".join(f"          s{i}: {{secretId: bench/secret-{i}}}\n" for i in range(SECRETS))
    + "  pulumiConfig:\n"
    + "".join(f"    s{i}: ${{aws.secrets.s{i}}}\n" for i in range(SECRETS))
)


class SdkClock:
    """Seconds spent in boto3 during the opens: everything the providers hand to boto3 goes
    through ``_aws_sdk.attempt`` (client construction, and each request: botocore's API call,
    the emulator's answer, and the few lines that build the request's arguments), and the
    ``import boto3`` of ``require_boto3``."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def install(self) -> None:
        from esc_pulumi.providers import _aws_sdk

        clock = self

        def timed(fn):
            def wrapper(*args, **kwargs):
                t = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    clock.seconds += time.perf_counter() - t

            return wrapper

        _aws_sdk.attempt = timed(_aws_sdk.attempt)
        _aws_sdk.require_boto3 = timed(_aws_sdk.require_boto3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15, help="warm opens measured (default 15)")
    args = parser.parse_args()

    from tests.providers import emulator

    work = Path(tempfile.mkdtemp(prefix="esc-bench-providers-"))
    server = emulator.start(work / "moto")
    try:
        for k in [k for k in os.environ if k.startswith("AWS_")]:
            del os.environ[k]
        os.environ.update({
            "AWS_ENDPOINT_URL": server.url,
            "AWS_CONFIG_FILE": str(work / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(work / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
        })
        sm = server.client("secretsmanager", REGION, **LOGIN)
        for i in range(SECRETS):
            sm.create_secret(Name=f"bench/secret-{i}", SecretString=f"bench-value-{i}-" + "x" * 32)
        run(work, server, args.repeat)
    finally:
        server.stop()


def run(work: Path, server, repeat: int) -> None:
    from esc_pulumi.backends.local import LocalBackend
    from esc_pulumi.esc import to_plain

    envs = work / "envs"
    (envs / "bench").mkdir(parents=True)
    (envs / "bench" / "aws.yaml").write_text(DEFINITION)
    backend = LocalBackend(envs)
    clock = SdkClock()
    clock.install()

    def one_open() -> tuple[float, float]:
        before = clock.seconds
        t = time.perf_counter()
        opened = backend.open({"imports": ["bench/aws"]})
        total = time.perf_counter() - t
        assert to_plain(opened.value)["pulumiConfig"]["s9"].startswith("bench-value-9-")
        return total, clock.seconds - before

    first_total, first_sdk = one_open()
    samples = [one_open() for _ in range(repeat)]
    totals = [t for t, _ in samples]
    overheads = [t - s for t, s in samples]
    total = statistics.median(totals)
    overhead = statistics.median(overheads)
    share = overhead / total

    import boto3

    def boto3_alone() -> float:
        t = time.perf_counter()
        c = boto3.client("secretsmanager", region_name=REGION, **LOGIN)
        for i in range(SECRETS):
            c.get_secret_value(SecretId=f"bench/secret-{i}")
        return time.perf_counter() - t

    boto3_alone()
    peer = statistics.median(boto3_alone() for _ in range(repeat))

    print(f"AWS providers: one open of aws-login (static) + aws-secrets ({SECRETS} secrets) against moto "
          f"on 127.0.0.1, median of {repeat} warm opens")
    print(f"   first open (loads boto3's models)   {first_total * 1000:8.1f} ms   "
          f"(boto3 + emulator {first_sdk * 1000:.1f} ms, ours {(first_total - first_sdk) * 1000:.1f} ms)")
    print(f"   open                                {total * 1000:8.1f} ms")
    print(f"   in boto3 and the emulator           {(total - overhead) * 1000:8.1f} ms")
    print(f"   our overhead                        {overhead * 1000:8.1f} ms")
    print(f"   overhead share of the open          {share * 100:8.1f} % {at_most(share * 100, 10, '%')}")
    print(f"   reference: boto3 alone, same calls  {peer * 1000:8.1f} ms (a client and {SECRETS} gets)")


if __name__ == "__main__":
    main()
