"""Tarball install from a local mirror, serving HTTPS: the release runs, behind basic auth and TLS."""

import json
import os
import time

import pytest

CA = "--cacert /etc/prometheus/tls/cert.pem"


@pytest.fixture(scope="module")
def password():
    with open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "prometheus-admin-password"), encoding="utf-8") as handle:
        return handle.read().split()[0]


def test_runs_the_unpacked_release_not_a_package(host):
    assert not host.package("prometheus").is_installed
    service = host.service("prometheus")
    assert service.is_running and service.is_enabled
    pid = host.check_output("systemctl show --property MainPID --value prometheus")
    executable = host.check_output(f"readlink /proc/{pid}/exe")
    sha256 = host.check_output("sha256sum /srv/mirror/prometheus-2.42.0.linux-amd64.tar.gz").split()[0]
    assert executable == f"/opt/prometheus/{sha256}/prometheus"
    assert host.file("/usr/local/bin/promtool").linked_to == f"/opt/prometheus/{sha256}/promtool"
    check = host.run("/usr/local/bin/promtool check config /etc/prometheus/prometheus.yml")
    assert check.rc == 0, check.stdout + check.stderr


def test_serves_https_only_and_only_with_the_admin_password(host, password):
    status = "curl -s -o /dev/null -w '%{http_code}' " + CA
    anonymous = host.check_output(f"{status} https://127.0.0.1:9090/-/ready")
    admin = host.check_output(f"{status} -u admin:{password} https://127.0.0.1:9090/-/ready")
    assert (anonymous, admin) == ("401", "200")
    plain = host.check_output(f"curl -s -u admin:{password} http://127.0.0.1:9090/-/ready")
    assert "HTTP request to an HTTPS server" in plain


def test_scrapes_itself_over_https(host, password):
    query = f"curl -sf {CA} -u admin:{password} 'https://127.0.0.1:9090/api/v1/query?query=up%7Bjob%3D%22prometheus%22%7D'"
    deadline = time.monotonic() + 60
    while True:
        result = json.loads(host.check_output(query))["data"]["result"]
        if (result and result[0]["value"][1] == "1") or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert result and result[0]["metric"]["instance"] == "127.0.0.1:9090"
    assert result[0]["value"][1] == "1"
