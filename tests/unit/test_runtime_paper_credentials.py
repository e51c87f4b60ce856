"""Paper bots: an account with credentials hands them to the runtime (as files, never
env); an account without credentials gets none (the runtime's paper broker fills)."""

from __future__ import annotations

import json

from builder_inputs import by_kind, load_case, modified

from tradebot_contracts.runtime_config import CONFIG_KEY, CREDENTIALS_DIR, RuntimeConfig

PAPER = "paper-two-symbols"
SECRET_REF = {"secretRef": {"name": "sim-keys", "keys": {"apiKey": "key", "secret": "secret"}}}


def test_paper_bot_with_account_credentials_gets_them_as_files() -> None:
    children = modified(PAPER, "accounts.0.spec.credentials", SECRET_REF).desired()
    config = RuntimeConfig.loads(by_kind(children, "ConfigMap")[0]["data"][CONFIG_KEY])
    assert config.mode == "paper"
    assert config.credentials.source == "file"
    assert config.credentials.file is not None
    assert config.credentials.file.directory == CREDENTIALS_DIR
    pod = by_kind(children, "Deployment")[0]["spec"]["template"]["spec"]
    secret = next(v["secret"] for v in pod["volumes"] if "secret" in v)
    assert secret["secretName"] == "sim-keys"
    container = pod["containers"][0]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert CREDENTIALS_DIR in mounts
    assert "sim-keys" not in json.dumps(container.get("env", []))
    assert "secretKeyRef" not in json.dumps(pod)


def test_paper_bot_without_account_credentials_gets_none() -> None:
    children = load_case(PAPER).desired()
    config = RuntimeConfig.loads(by_kind(children, "ConfigMap")[0]["data"][CONFIG_KEY])
    assert config.credentials.source == "none"
