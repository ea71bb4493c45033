# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run ansible-playbook from tests against this checkout of zerotrust.cilium.

The collection resolves to this checkout the same way it does for Python imports
(tests/collection_path.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import subprocess
import sys

import collection_path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_TIMEOUT = 900


def collections_path():
    """Directory to put on ANSIBLE_COLLECTIONS_PATH so ``zerotrust.cilium`` resolves here."""
    return collection_path.collections_parent()


def ansible_playbook_command():
    """ansible-playbook of the Python running the tests (the project venv), else PATH."""
    candidates = [
        os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
        os.path.join(ROOT, ".venv", "bin", "ansible-playbook"),
    ]
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("ansible-playbook")
    if found is None:
        raise RuntimeError("ansible-playbook not found next to %s, in %s/.venv/bin or on PATH"
                           % (sys.executable, ROOT))
    return found


def run_playbook(playbook, extra_vars=None, inventory=None, check=False, env=None, timeout=DEFAULT_TIMEOUT):
    """Run ``playbook`` and return the ``subprocess.CompletedProcess`` (text stdout/stderr).

    ``playbook`` is a path, absolute or relative to the repository root.  Without
    ``inventory`` the play runs on ``localhost`` over the local connection with the
    tests' own Python.  ``extra_vars`` (a dict) is passed as JSON, so types survive.
    ``env`` entries override the environment built here.  The return code is not
    checked: tests assert on it and on the output.
    """
    playbook_path = playbook if os.path.isabs(playbook) else os.path.join(ROOT, playbook)
    command = [ansible_playbook_command(), playbook_path]
    environment = dict(os.environ)
    environment.update({
        "ANSIBLE_COLLECTIONS_PATH": collections_path(),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
    })
    if inventory is None:
        command += ["--inventory", "localhost,", "--connection", "local"]
        environment["ANSIBLE_PYTHON_INTERPRETER"] = sys.executable
    else:
        command += ["--inventory", inventory]
    if extra_vars:
        command += ["--extra-vars", json.dumps(extra_vars)]
    if check:
        command.append("--check")
    if env:
        environment.update(env)
    return subprocess.run(
        command,
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        timeout=timeout,
        check=False,
    )
