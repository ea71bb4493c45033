# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start the MOCK Kubernetes API (fixtures/mock_kube_api.py) for a test, with a kubeconfig.

No Kubernetes control plane can run where the tests run; see the mock's own docstring for
what it answers. It is never the only test of a feature.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import json
import os
import subprocess
import sys

from helpers import ROOT

MOCK_API = os.path.join(ROOT, "tests", "integration", "fixtures", "mock_kube_api.py")


@contextlib.contextmanager
def mock_kube_api(directory, state, netns=None):
    """Run the mock API on 127.0.0.1 (inside ``netns`` when given) until the block ends.

    ``state`` is the mock's initial state ({objects, exec, requests, pod_status}). Yields
    ``(state_file, kubeconfig)`` paths; the server is stopped whatever happens in the block.
    """
    state_file = os.path.join(str(directory), "mock-api-state.json")
    port_file = os.path.join(str(directory), "mock-api-port")
    with open(state_file, "w") as stream:
        json.dump(state, stream)
    command = [sys.executable, MOCK_API, state_file, port_file]
    if netns:
        command = ["ip", "netns", "exec", netns] + command
    server = subprocess.Popen(command)
    try:
        for _attempt in range(100):
            if os.path.exists(port_file) or server.poll() is not None:
                break
            subprocess.run(["sleep", "0.1"], check=True)
        with open(port_file) as stream:
            port = stream.read().strip()
        kubeconfig = os.path.join(str(directory), "kubeconfig")
        with open(kubeconfig, "w") as stream:
            json.dump({
                "apiVersion": "v1", "kind": "Config", "current-context": "mock",
                "clusters": [{"name": "mock", "cluster": {"server": "http://127.0.0.1:%s" % port}}],
                "users": [{"name": "mock", "user": {"token": "mock-token"}}],
                "contexts": [{"name": "mock", "context": {"cluster": "mock", "user": "mock"}}]}, stream)
        yield state_file, kubeconfig
    finally:
        server.kill()
        server.wait()


def read_state(state_file):
    with open(state_file) as stream:
        return json.load(stream)
