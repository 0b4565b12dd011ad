"""A stand-in for the ``pulumi`` executable, for the tests of ``esc-pulumi run -- pulumi ...``.

Tests put a launcher named ``pulumi`` first on PATH (see ``test_run_pulumi.fake_pulumi``). Every
call appends one JSON line to the file named by ``FAKE_PULUMI_LOG``: its arguments, working
directory, which of its standard streams are terminals, whether it has a process group of its
own (not its parent's), the variables named in
``FAKE_PULUMI_ENV`` (comma-separated) and ``ESC_PULUMI_APPLIED``, and for the config-reading
subcommands (``up``, ``preview``, ...) the ``--config-file`` it was given: path, mode, text, the
typed document (yaml.v3 rules, as the CLI reads it) and every key's config text as the CLI
would deliver it to the program (and whether ``make_plan`` of the ``--stack``, as ``load()``
would make it here, sees the wrapper's applied marker), ``secure:`` values decrypted — ``v1:`` ones with Pulumi's
passphrase rule (PULUMI_CONFIG_PASSPHRASE[_FILE] and the file's encryptionsalt), ``fake:``
ones (this stand-in's "other secrets provider") from base64.

``pulumi config set --secret [--config-file F] [--stack S] KEY`` reads the value from standard
input (dropping one trailing newline) and stores ``secure: fake:<base64>`` in F; a file without
any secrets manager gets ``encryptionsalt: fake-salt-from-cli``, as the real CLI sets one up on
first use. ``FAKE_PULUMI_FAIL_SET=1`` makes it fail instead.

Other knobs: ``FAKE_PULUMI_PRINT=1`` prints every delivered ``key=value`` on standard output (a
program that leaks its config); ``FAKE_PULUMI_SLEEP=S`` logs, then sleeps S seconds, logging each
SIGTERM or SIGINT that comes (and exiting 128+N); ``FAKE_PULUMI_EXIT=N`` exits with N.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import stat
import sys
import time
from pathlib import Path
from typing import Any

from esc_pulumi.secrets.passphrase import PassphraseCrypter
from esc_pulumi.workspace.config_file import yaml_document
from esc_pulumi.workspace.project import is_secure, load_document
from esc_pulumi.workspace.rendering import config_text

CONFIG_READERS = {"up", "preview", "refresh", "destroy", "import", "watch"}
VALUE_FLAGS = {"--config-file", "--stack", "-s", "--cwd", "-C", "--message", "-m"}


def log(entry: dict[str, Any]) -> None:
    path = os.environ.get("FAKE_PULUMI_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")


def parse(argv: list[str]) -> tuple[list[str], dict[str, str], set[str]]:
    """Positional words, flag values and switches (enough for the tests' command lines)."""
    words: list[str] = []
    values: dict[str, str] = {}
    switches: set[str] = set()
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-") and "=" in a:
            k, _, v = a.partition("=")
            values[k] = v
        elif a in VALUE_FLAGS:
            values[{"-s": "--stack", "-C": "--cwd", "-m": "--message"}.get(a, a)] = argv[i + 1]
            i += 1
        elif a.startswith("-"):
            switches.add(a)
        else:
            words.append(a)
        i += 1
    return words, values, switches


def decrypt(ciphertext: str, document: dict, where: str, cache: dict) -> str:
    if ciphertext.startswith("fake:"):
        return base64.b64decode(ciphertext[5:]).decode("utf-8")
    if "crypter" not in cache:
        cache["crypter"] = PassphraseCrypter.from_stack(document, os.environ, where=where)
    return cache["crypter"].decrypt(ciphertext)


def reveal(value: Any, document: dict, where: str, cache: dict) -> tuple[Any, bool]:
    """``value`` with its secure leaves decrypted (as the CLI does), and whether it had any."""
    if is_secure(value):
        return decrypt(value["secure"], document, where, cache), True
    if isinstance(value, dict):
        out, secret = {}, False
        for k, c in value.items():
            out[k], s = reveal(c, document, where, cache)
            secret = secret or s
        return out, secret
    if isinstance(value, list):
        items = [reveal(c, document, where, cache) for c in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def read_config_file(path: str) -> dict[str, Any]:
    p = Path(path)
    info: dict[str, Any] = {"path": path, "exists": p.exists()}
    if not p.exists():
        return info
    info["mode"] = stat.S_IMODE(p.stat().st_mode)
    info["text"] = p.read_text(encoding="utf-8")
    document = load_document(p) or {}
    info["document"] = document
    cache: dict = {}
    delivered: dict[str, str] = {}
    secret_keys = []
    for key, value in (document.get("config") or {}).items():
        plain, secret = reveal(value, document, path, cache)
        delivered[key] = config_text(plain)
        if secret:
            secret_keys.append(key)
    info["delivered"] = delivered
    info["secret_keys"] = sorted(secret_keys)
    return info


def config_set(values: dict[str, str], switches: set[str], key: str) -> int:
    data = sys.stdin.buffer.read().decode("utf-8")
    if data.endswith("\n"):
        data = data[:-1]
    log({"stdin": data})
    if os.environ.get("FAKE_PULUMI_FAIL_SET"):
        print("error: could not reach the key vault", file=sys.stderr)
        return 255
    if "--secret" not in switches:
        print("error: this stand-in only sets secrets", file=sys.stderr)
        return 2
    path = Path(values["--config-file"])
    document = (load_document(path) if path.exists() else None) or {}
    if "encryptionsalt" not in document and "secretsprovider" not in document:
        document["encryptionsalt"] = "fake-salt-from-cli"
    config = document.get("config") or {}
    config[key] = {"secure": "fake:" + base64.b64encode(data.encode("utf-8")).decode()}
    document["config"] = config
    path.write_text(yaml_document(document), encoding="utf-8")
    return 0


def main(argv: list[str]) -> int:
    words, values, switches = parse(argv)
    entry: dict[str, Any] = {
        "argv": argv,
        "cwd": os.getcwd(),
        "tty": [os.isatty(0), os.isatty(1), os.isatty(2)],
        "own_process_group": os.getpgrp() != os.getpgid(os.getppid()),
        "env": {k: os.environ.get(k) for k in
                ["ESC_PULUMI_APPLIED", *filter(None, os.environ.get("FAKE_PULUMI_ENV", "").split(","))]},
    }
    if words[:2] == ["config", "set"]:
        log(entry)
        return config_set(values, switches, words[2])
    if words and words[0] in CONFIG_READERS and "--config-file" in values:
        entry["config_file"] = read_config_file(values["--config-file"])
        if "--stack" in values:
            # What a load() of the same stack, started here, would make of the wrapper's marker.
            from esc_pulumi.workspace.plan import make_plan

            here = Path(os.getcwd()) / values.get("--cwd", ".")
            plan = make_plan(values["--stack"].rsplit("/", 1)[-1], here)
            entry["plan_applied"] = plan.applied_by_cli
    sleep = float(os.environ.get("FAKE_PULUMI_SLEEP") or 0)
    if sleep:
        def on_signal(signum: int, frame: Any) -> None:
            name = signal.Signals(signum).name
            log({"signal": name, "config_file_exists": Path(values["--config-file"]).exists()})
            time.sleep(0.5)  # a second delivery of the signal, if any, is logged too
            sys.exit(128 + signum)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    log(entry)
    if os.environ.get("FAKE_PULUMI_PRINT"):
        for key, text in (entry.get("config_file") or {}).get("delivered", {}).items():
            print(f"{key}={text}", flush=True)
    if sleep:
        time.sleep(sleep)
    return int(os.environ.get("FAKE_PULUMI_EXIT") or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
