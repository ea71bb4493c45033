"""'make lab' on a machine that cannot run the lab: one line of reason and fix, no traceback."""

import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_ensure_host_without_root_names_the_reason_and_the_fix():
    # setpriv drops to 'nobody' for this one command: the real non-root path of the script.
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         "bash", os.path.join(REPO, "lab", "ensure-host.sh")],
        capture_output=True, text=True, check=False, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "needs root" in lines[0] and "sudo make" in lines[0]
    assert result.stdout == ""


def test_ensure_host_reports_a_podman_that_cannot_run(tmp_path):
    # A podman that fails 'podman info', as on a host without a working runtime: a fake
    # binary first on PATH (the real one is not broken on purpose on a shared machine).
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake_podman = fake_bin / "podman"
    fake_podman.write_text("#!/bin/sh\necho 'Error: default OCI runtime \"crun\" not found' >&2\nexit 125\n")
    fake_podman.chmod(0o755)
    result = subprocess.run(
        ["bash", os.path.join(REPO, "lab", "ensure-host.sh")], capture_output=True, text=True, check=False,
        env={"PATH": "%s:/usr/sbin:/usr/bin:/sbin:/bin" % fake_bin},
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "podman cannot run here" in lines[0] and "runc" in lines[0]
