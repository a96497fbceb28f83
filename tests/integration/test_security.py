"""Secrets stay secret; credentials come from the environment; inputs are bounded."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SECRET = "s3cr3t-Pa55-7f1e9c"

pytestmark = pytest.mark.models


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lsrkit.cli", *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=600)


def test_failing_connection_never_prints_the_secret(tmp_path, mini_dir):
    env = {"LSRKIT_OPENSEARCH_USER": "admin", "LSRKIT_OPENSEARCH_PASSWORD": SECRET, "LSRKIT_OPENSEARCH_API_KEY": SECRET, "QDRANT_API_KEY": SECRET}
    for backend, url in (("opensearch", "http://127.0.0.1:9"), ("qdrant", "http://127.0.0.1:9")):
        result = _run(
            ["ingest", str(mini_dir / "corpus.jsonl"), "--backend", backend, "--url", url, "--index", "sec", "--data-dir", str(tmp_path), "--no-multivector"],
            env,
        )
        output = result.stdout + result.stderr
        assert result.returncode != 0
        assert SECRET not in output
        assert "unreachable" in output or "error" in output.lower()


def test_successful_ingest_output_has_no_secret(tmp_path, opensearch_url, mini_dir):
    head = tmp_path / "c.jsonl"
    head.write_text("".join((mini_dir / "corpus.jsonl").read_text().splitlines(keepends=True)[:20]))
    env = {"LSRKIT_OPENSEARCH_USER": "admin", "LSRKIT_OPENSEARCH_PASSWORD": SECRET}
    # security is off on the test node, so basic auth is sent and ignored: the run succeeds
    result = _run(
        ["ingest", str(head), "--backend", "opensearch", "--url", opensearch_url, "--index", "sec-ok", "--data-dir", str(tmp_path), "--no-multivector"], env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert SECRET not in result.stdout + result.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    from lsrkit.plugin.opensearch import OpenSearchBackend, client_from_env

    OpenSearchBackend(client_from_env(opensearch_url)).drop_index("sec-ok")


def test_https_client_uses_ca_bundle_and_env_credentials(monkeypatch, tmp_path):
    from lsrkit.plugin.opensearch import client_from_env

    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    monkeypatch.setenv("LSRKIT_OPENSEARCH_API_KEY", SECRET)
    monkeypatch.setenv("LSRKIT_CA_CERTS", str(ca))
    try:
        client = client_from_env("https://search.example.invalid:9200")
    except Exception as exc:  # urllib3 may refuse the dummy CA file: still configured from env
        assert SECRET not in str(exc)
        return
    connection = client.transport.get_connection()
    assert connection.use_ssl and connection.host.startswith("https://")
    assert connection.headers.get("authorization") == f"ApiKey {SECRET}"
    assert SECRET not in repr(client)


@pytest.mark.parametrize("name", ["UPPER", "../etc", "a b", "", "x" * 200, "-lead", "a/b", "a*"])
def test_index_names_are_validated(name, tmp_path):
    from lsrkit.core import ConfigError, IndexSpec

    with pytest.raises(ConfigError):
        IndexSpec(name)
