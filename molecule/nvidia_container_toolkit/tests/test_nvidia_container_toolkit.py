"""containerd accepted the NVIDIA runtime config the role wrote."""


def test_containerd_runs_with_the_nvidia_runtime_as_default(host):
    assert host.service("containerd").is_running
    dump = host.check_output("containerd config dump")
    assert '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]' in dump
    assert '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]' in dump
    assert 'BinaryName = "/usr/bin/nvidia-container-runtime"' in dump
    assert 'default_runtime_name = "nvidia"' in dump
    # The rest of the default config written in prepare survived the edit, in place.
    on_disk = host.file("/etc/containerd/config.toml").content_string
    assert "SystemdCgroup = " in on_disk and on_disk.count('default_runtime_name = ') == 1
    # The restarted daemon answers on its socket with the config loaded.
    assert "Server:" in host.check_output("ctr version")
    assert host.run("python3 -c 'import tomllib; tomllib.load(open(\"/etc/containerd/config.toml\", \"rb\"))'").rc == 0
