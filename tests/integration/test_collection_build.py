"""The collection tarball users install: what goes in and what must stay out."""

import json
import os
import subprocess
import sys
import tarfile

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE_GALAXY = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")


def build(tmp_path):
    subprocess.run([ANSIBLE_GALAXY, "collection", "build", "--force", "--output-path", str(tmp_path), REPO],
                   check=True, capture_output=True, text=True)
    with open(os.path.join(REPO, "galaxy.yml")) as stream:
        version = yaml.safe_load(stream)["version"]
    return os.path.join(str(tmp_path), "zerotrust-cilium-%s.tar.gz" % version)


def test_tarball_holds_the_collection_and_no_build_or_test_artefacts(tmp_path):
    # Make sure the artefacts exist in the checkout, so leaving them out is really tested.
    for artefact in (".build", "output", "tests/output", "bench/results"):
        os.makedirs(os.path.join(REPO, artefact), exist_ok=True)
    tarball = build(tmp_path)
    with tarfile.open(tarball) as archive:
        members = archive.getnames()
        manifest = json.load(archive.extractfile("MANIFEST.json"))

    for needed in ("galaxy.yml", "README.md", "LICENSE", "meta/runtime.yml", "playbooks/site.yml",
                   "roles/plan/meta/argument_specs.yml", "plugins/module_utils/errors.py"):
        assert needed in members or needed == "galaxy.yml", needed
    forbidden_prefixes = (".venv", ".build", ".git/", ".ci", "output", "tests/output", "bench/results",
                          "collections/")
    leaked = [member for member in members if member.startswith(forbidden_prefixes)]
    leaked += [member for member in members if "__pycache__" in member or member.endswith(".pyc")]
    assert leaked == []

    info = manifest["collection_info"]
    assert (info["namespace"], info["name"]) == ("zerotrust", "cilium")
    assert info["license"] == ["GPL-3.0-or-later"]
    assert set(info["dependencies"]) == {"kubernetes.core", "ansible.posix"}


def test_runtime_metadata_requires_a_supported_ansible():
    with open(os.path.join(REPO, "meta", "runtime.yml")) as stream:
        runtime = yaml.safe_load(stream)
    assert runtime["requires_ansible"] == ">=2.16.0"
