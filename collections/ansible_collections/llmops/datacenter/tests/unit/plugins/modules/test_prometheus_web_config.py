"""prometheus_web_config module: bcrypt hashes, no rehash on re-run, check mode, and the real promtool."""

from __future__ import annotations

import bcrypt
import pytest
import yaml
from ansible_collections.llmops.datacenter.plugins.modules import prometheus_web_config


@pytest.fixture
def run_module(run_module):
    """Run prometheus_web_config with args; promtool, when given, answers for promtool (else the real one runs)."""

    def run(args, check_mode=False, diff=False, promtool=None):
        fakes = {"run_command": promtool, "bin_path": "/usr/bin/promtool"} if promtool is not None else {}
        return run_module(prometheus_web_config, args, check_mode, diff, **fakes)

    return run


def web_args(path, password="correct horse battery", **overrides):
    args = {"path": str(path), "users": {"admin": password}, "bcrypt_rounds": 4}
    args.update(overrides)
    return args


@pytest.mark.parametrize("check_mode", [False, True])
def test_writes_a_bcrypt_hash_never_the_password(run_module, fake_promtool, tmp_path, check_mode):
    path = tmp_path / "web.yml"
    promtool = fake_promtool()

    result = run_module(web_args(path), check_mode=check_mode, diff=True, promtool=promtool)

    assert result["changed"] is True
    (argv, checked), = promtool.calls
    assert argv[1:3] == ["check", "web-config"]
    assert "correct horse battery" not in checked
    stored = yaml.safe_load(checked)["basic_auth_users"]["admin"]
    assert bcrypt.checkpw(b"correct horse battery", stored.encode())
    assert path.exists() is not check_mode


@pytest.mark.parametrize("check_mode", [False, True])
def test_same_password_keeps_the_hash_and_a_new_one_replaces_it(run_module, fake_promtool, tmp_path, check_mode):
    path = tmp_path / "web.yml"
    run_module(web_args(path), promtool=fake_promtool())
    written = path.read_text()

    same = run_module(web_args(path), check_mode=check_mode, promtool=fake_promtool())
    new = run_module(web_args(path, password="another long secret"), check_mode=check_mode, promtool=fake_promtool())

    assert same["changed"] is False
    assert new["changed"] is True
    stored = yaml.safe_load(path.read_text())["basic_auth_users"]["admin"]
    assert (path.read_text() == written) is check_mode
    assert bcrypt.checkpw((b"correct horse battery" if check_mode else b"another long secret"), stored.encode())


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"users": {}}, "users: at least one user"),
        ({"users": {"admin": ""}}, "users.admin: a non-empty password"),
        ({"tls_cert_file": "/etc/prometheus/cert.pem"}, "tls_cert_file, tls_key_file: set both"),
    ],
)
def test_missing_password_or_half_tls_fails_and_writes_nothing(run_module, fake_promtool, tmp_path, overrides, field):
    path = tmp_path / "web.yml"
    result = run_module(web_args(path, **overrides), promtool=fake_promtool())
    assert result["failed"] is True and field in result["msg"]
    assert not path.exists()


def test_real_promtool_accepts_the_web_config(run_module, tmp_path):
    path = tmp_path / "web.yml"
    first = run_module(web_args(path, promtool="promtool"))
    second = run_module(web_args(path, promtool="promtool"))
    assert first["changed"] is True and second["changed"] is False

    missing_cert = run_module(
        web_args(path, promtool="promtool", tls_cert_file=str(tmp_path / "absent.pem"), tls_key_file=str(tmp_path / "absent.key"))
    )
    assert missing_cert["failed"] is True and "rejected the new" in missing_cert["msg"]
    assert "tls_server_config" not in path.read_text()
