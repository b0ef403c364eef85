"""containerd accepted the NVIDIA runtime config the role wrote."""


def test_containerd_runs_with_the_nvidia_runtime_as_default(host):
    assert host.service("containerd").is_running
    dump = host.check_output("containerd config dump")
    assert '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]' in dump
    assert '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]' in dump
    assert 'BinaryName = "/usr/bin/nvidia-container-runtime"' in dump
    assert 'default_runtime_name = "nvidia"' in dump
    # Debian's shipped config.toml was edited, not replaced: its CNI paths (containerd's own
    # default is /opt/cni/bin) are still what the running config uses.
    assert 'bin_dir = "/usr/lib/cni"' in dump
    on_disk = host.file("/etc/containerd/config.toml").content_string
    assert on_disk.count("default_runtime_name = ") == 1 and on_disk.count("BinaryName = ") == 1
    # The restarted daemon answers on its socket with the config loaded.
    assert "Server:" in host.check_output("ctr version")
    assert host.run("python3 -c 'import tomllib; tomllib.load(open(\"/etc/containerd/config.toml\", \"rb\"))'").rc == 0
