"""The execution environment definition: ansible-builder turns it into a build context that holds
the collection, its requirements and a checked helm install; and the AWX configuration playbook.

``ansible-builder create`` only writes the build context (Containerfile and _build/), offline;
``ansible-builder build`` needs a registry and is not run here. The collection tarball is
built from this checkout, placed where execution-environment.yml expects it, and everything
the definition references is copied next to it in a scratch folder, so the checkout's own
.build/ is never touched. The build context's own introspection script is then run on the
tarball installed offline, as the image build would run it, and install_helm.py (the build
step that fetches helm) is run against archives made here and served from file:// URLs, so
no test downloads anything.

extensions/awx/configure.yml runs for real, with the awx.awx modules, against a small
stand-in of the controller's REST API on 127.0.0.1 that stores what it is sent; the tests
then read back what a controller would have been asked to create.
"""

import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from packaging.specifiers import SpecifierSet

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
DEFINITION = os.path.join(REPO, "execution-environment.yml")
INSTALL_HELM = os.path.join(REPO, "extensions", "awx", "ee", "install_helm.py")
SITE_PACKAGES_COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(yaml.__file__)), "ansible_collections")


def tool(name):
    path = os.path.join(BIN, name)
    assert os.access(path, os.X_OK), "%s is not installed next to %s (tests/requirements.txt)" % (name, sys.executable)
    return path


def load_yaml(path):
    with open(path) as stream:
        return yaml.safe_load(stream)


def definition():
    return load_yaml(DEFINITION)


def galaxy_version():
    return load_yaml(os.path.join(REPO, "galaxy.yml"))["version"]


def tarball_source():
    (entry,) = [entry for entry in definition()["additional_build_files"] if entry["src"].endswith(".tar.gz")]
    return entry


def helm_run_step():
    (step,) = [step for step in definition()["additional_build_steps"]["append_builder"] if "install_helm.py" in step
               and step.startswith("RUN ")]
    return step


def pinned_sums():
    return dict(re.findall(r"--sha256 (linux-[a-z0-9]+)=([0-9a-f]{64})", helm_run_step()))


def pinned_helm_version():
    return re.search(r"--version (v\d+\.\d+\.\d+)", helm_run_step()).group(1)


def create(definition_path, context_dir):
    return subprocess.run([tool("ansible-builder"), "create", "-f", definition_path, "-c", context_dir,
                           "--output-filename", "Containerfile"],
                          check=False, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def collection_tarball(tmp_path_factory):
    output = tmp_path_factory.mktemp("dist")
    subprocess.run([tool("ansible-galaxy"), "collection", "build", "--force", "--output-path", str(output), REPO],
                   check=True, capture_output=True, text=True, timeout=300)
    return os.path.join(str(output), "zerotrust-cilium-%s.tar.gz" % galaxy_version())


def scratch_checkout(root, tarball, data=None):
    """Copy the definition and every file it references into ``root``, the tarball where it is expected."""
    data = data if data is not None else definition()
    for dependency in ("python", "system"):
        source = data["dependencies"][dependency]
        if os.path.isfile(os.path.join(REPO, source)):
            os.makedirs(os.path.dirname(os.path.join(root, source)) or root, exist_ok=True)
            shutil.copy(os.path.join(REPO, source), os.path.join(root, source))
    for entry in data["additional_build_files"]:
        target = os.path.join(root, entry["src"])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(tarball if entry["src"].endswith(".tar.gz") else os.path.join(REPO, entry["src"]), target)
    path = os.path.join(root, "execution-environment.yml")
    with open(path, "w") as stream:
        yaml.safe_dump(data, stream, sort_keys=False)
    return path


@pytest.fixture(scope="module")
def build_context(tmp_path_factory, collection_tarball):
    root = str(tmp_path_factory.mktemp("checkout"))
    context = os.path.join(root, "context")
    result = create(scratch_checkout(root, collection_tarball), context)
    assert result.returncode == 0, result.stdout + result.stderr
    with open(os.path.join(context, "Containerfile")) as stream:
        return context, stream.read()


def stage(containerfile, name):
    """The lines of one build stage of the Containerfile."""
    match = re.search(r"^FROM \S+ AS %s\n(.*?)(?=^FROM |\Z)" % name, containerfile, re.MULTILINE | re.DOTALL)
    assert match, name
    return match.group(1)


# --- the definition ------------------------------------------------------------------------

def test_definition_pins_ansible_and_the_collections_the_tests_run_with():
    data = definition()
    assert data["version"] == 3
    with open(os.path.join(REPO, "tests", "requirements.txt")) as stream:
        core_pin = re.search(r"^ansible-core==(\S+)$", stream.read(), re.MULTILINE).group(1)
    assert data["dependencies"]["ansible_core"]["package_pip"] == "ansible-core==%s" % core_pin
    assert re.match(r"^ansible-runner==\d+\.\d+\.\d+$", data["dependencies"]["ansible_runner"]["package_pip"])

    collections = {entry["name"]: entry for entry in data["dependencies"]["galaxy"]["collections"]}
    needed = load_yaml(os.path.join(REPO, "galaxy.yml"))["dependencies"]
    for name, constraint in needed.items():
        assert name in collections, name
        version = collections[name]["version"]
        namespace, collection = name.split(".")
        with open(os.path.join(SITE_PACKAGES_COLLECTIONS, namespace, collection, "MANIFEST.json")) as stream:
            tested = json.load(stream)["collection_info"]["version"]
        assert version == tested, name
        assert version in SpecifierSet(constraint), (name, version, constraint)


def test_definition_installs_the_tarball_of_this_version():
    expected = "zerotrust-cilium-%s.tar.gz" % galaxy_version()
    entry = tarball_source()
    assert os.path.basename(entry["src"]) == expected
    galaxy = definition()["dependencies"]["galaxy"]["collections"]
    assert {"name": "/build/%s/%s" % (entry["dest"], expected), "type": "file"} in galaxy


def test_helm_is_pinned_for_both_architectures():
    assert pinned_helm_version() == "v3.17.2"
    assert sorted(pinned_sums()) == ["linux-amd64", "linux-arm64"]


# --- ansible-builder create --------------------------------------------------------------------

def test_build_context_holds_the_collection_and_its_requirements(build_context, collection_tarball):
    context, containerfile = build_context
    build = os.path.join(context, "_build")
    for name in ("requirements.txt", "bindep.txt"):
        with open(os.path.join(build, name)) as built, open(os.path.join(REPO, name)) as source:
            assert built.read() == source.read(), name
    requirements = load_yaml(os.path.join(build, "requirements.yml"))
    assert requirements == definition()["dependencies"]["galaxy"]
    copied = os.path.join(build, "collections", os.path.basename(collection_tarball))
    with open(copied, "rb") as built, open(collection_tarball, "rb") as source:
        assert built.read() == source.read()
    assert "ARG EE_BASE_IMAGE=\"%s\"" % definition()["images"]["base_image"]["name"] in containerfile
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core==' in containerfile
    galaxy = stage(containerfile, "galaxy")
    assert "COPY _build /build" in galaxy and "ansible-galaxy collection install" in galaxy


def test_build_context_installs_helm_checked_by_sha256(build_context):
    context, containerfile = build_context
    builder, final = stage(containerfile, "builder"), stage(containerfile, "final")
    run_lines = [line for line in builder.splitlines() if "install_helm.py" in line and line.startswith("RUN ")]
    assert len(run_lines) == 1
    for platform_label, digest in pinned_sums().items():
        assert "--sha256 %s=%s" % (platform_label, digest) in run_lines[0]
    assert "--version %s" % pinned_helm_version() in run_lines[0]
    assert "COPY _build/zerotrust/install_helm.py /output/zerotrust/install_helm.py" in builder
    assert builder.index("COPY _build/zerotrust/install_helm.py") < builder.index(run_lines[0])
    assert "COPY --from=builder /output/zerotrust/bin/helm /usr/local/bin/helm" in final
    # The final stage removes /output at its end: helm is copied out of the builder stage itself.
    assert final.index("/usr/local/bin/helm") < final.index("RUN rm -rf /output")
    with open(os.path.join(context, "_build", "zerotrust", "install_helm.py")) as built, open(INSTALL_HELM) as source:
        assert built.read() == source.read()


def test_collection_tarball_carries_what_the_image_and_awx_read(collection_tarball):
    with tarfile.open(collection_tarball) as archive:
        members = set(archive.getnames())
        ee_meta = yaml.safe_load(archive.extractfile("meta/execution-environment.yml"))
    assert ee_meta == {"version": 1, "dependencies": {"python": "requirements.txt", "system": "bindep.txt"}}
    for needed in ("requirements.txt", "bindep.txt", "extensions/awx/configure.yml", "extensions/awx/job_templates.yml",
                   "extensions/awx/surveys/site.json", "extensions/awx/credential_types/kubeconfig.json",
                   "playbooks/site.yml"):
        assert needed in members, needed


def load_script(path):
    spec = importlib.util.spec_from_file_location("ee_build_introspect", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def requirement_names(lines):
    return {re.split(r"[<>=!~\[ #]", line.strip(), maxsplit=1)[0].lower() for line in lines
            if line.strip() and not line.startswith("#")}


def test_image_introspection_collects_the_collection_requirements(build_context, tmp_path):
    """Run the context's own introspect.py as the builder stage does, on the tarball installed offline."""
    context, containerfile = build_context
    assert "introspect.py introspect --user-pip=requirements.txt --user-bindep=bindep.txt" in containerfile
    collections = tmp_path / "collections"
    tarball = os.path.join(context, "_build", "collections", "zerotrust-cilium-%s.tar.gz" % galaxy_version())
    subprocess.run([tool("ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "--force",
                    "-p", str(collections), tarball], check=True, capture_output=True, text=True, timeout=300)
    kubernetes_core = collections / "ansible_collections" / "kubernetes" / "core"
    kubernetes_core.parent.mkdir(parents=True)
    kubernetes_core.symlink_to(os.path.join(SITE_PACKAGES_COLLECTIONS, "kubernetes", "core"))
    written_pip, written_bindep = tmp_path / "pip.txt", tmp_path / "bindep.txt"
    subprocess.run([sys.executable, os.path.join(context, "_build", "scripts", "introspect.py"), "introspect",
                    "--write-pip", str(written_pip), "--write-bindep", str(written_bindep), str(collections)],
                   check=True, capture_output=True, text=True, timeout=120)
    pip_lines = written_pip.read_text().splitlines()
    bindep_lines = written_bindep.read_text().splitlines()
    # The installed collection's meta/execution-environment.yml leads to its own files.
    ours = [line for line in pip_lines if line.endswith("# from collection zerotrust.cilium")]
    introspect = load_script(os.path.join(context, "_build", "scripts", "introspect.py"))
    with open(os.path.join(REPO, "requirements.txt")) as stream:
        # ansible-builder leaves out what the image has anyway (PyYAML comes with ansible-core).
        assert requirement_names(ours) == requirement_names(stream) - introspect.EXCLUDE_REQUIREMENTS
    ours = [line for line in bindep_lines if line.endswith("# from collection zerotrust.cilium")]
    with open(os.path.join(REPO, "bindep.txt")) as stream:
        assert [line.split("  #")[0] for line in ours] == [line.strip() for line in stream
                                                           if line.strip() and not line.startswith("#")]
    assert "jsonpatch" in requirement_names(pip_lines)  # kubernetes.core's own requirement


def test_bindep_gives_the_image_the_ssh_client_and_leaves_node_tools_to_nodes(tmp_path):
    listed = subprocess.run([tool("bindep"), "-f", os.path.join(REPO, "bindep.txt"), "-l", "newline"],
                            check=False, capture_output=True, text=True, timeout=60)
    node = subprocess.run([tool("bindep"), "-f", os.path.join(REPO, "bindep.txt"), "-l", "newline", "node"],
                          check=False, capture_output=True, text=True, timeout=60)
    # This machine is Debian: the dpkg names apply.
    assert "openssh-client" in listed.stdout.split()
    assert not {"iproute2", "ipvsadm", "nftables", "iputils-ping"} & set(listed.stdout.split())
    assert {"openssh-client", "iproute2", "ipvsadm", "nftables", "iputils-ping", "kmod", "iptables", "procps",
            "python3"} <= set(node.stdout.split())


def test_a_definition_with_a_missing_requirements_file_is_refused(tmp_path, collection_tarball):
    broken = definition()
    broken["dependencies"]["python"] = "requirements-missing.txt"
    result = create(scratch_checkout(str(tmp_path), collection_tarball, broken), str(tmp_path / "context"))
    assert result.returncode != 0
    assert "requirements-missing.txt does not exist" in result.stdout + result.stderr
    assert not (tmp_path / "context" / "Containerfile").exists()


def test_a_definition_of_an_unknown_format_is_refused(tmp_path, collection_tarball):
    broken = definition()
    broken["dependencies"]["ansible_core"] = "ansible-core==2.19.14"
    result = create(scratch_checkout(str(tmp_path), collection_tarball, broken), str(tmp_path / "context"))
    assert result.returncode != 0
    assert "ansible_core" in result.stdout + result.stderr


def test_a_missing_tarball_is_only_warned_about_so_the_docs_build_it_first(tmp_path, collection_tarball):
    root = str(tmp_path)
    path = scratch_checkout(root, collection_tarball)
    os.remove(os.path.join(root, tarball_source()["src"]))
    result = create(path, str(tmp_path / "context"))
    assert result.returncode == 0
    assert "No matches for '%s'" % tarball_source()["src"] in result.stdout + result.stderr
    assert not (tmp_path / "context" / "_build" / "collections").exists()
    with open(os.path.join(REPO, "docs", "awx.md")) as stream:
        assert "make collection" in stream.read()


# --- install_helm.py, the build step that fetches helm ---------------------------------------

def fake_helm_archive(directory, version, platform_label, member_content=b"#!/bin/sh\necho helm\n", member=None):
    name = "helm-%s-%s.tar.gz" % (version, platform_label)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(member or "%s/helm" % platform_label)
        info.size = len(member_content)
        info.mode = 0o644
        archive.addfile(info, io.BytesIO(member_content))
        readme = tarfile.TarInfo("%s/README.md" % platform_label)
        readme.size = 2
        archive.addfile(readme, io.BytesIO(b"hi"))
    data = buffer.getvalue()
    with open(os.path.join(directory, name), "wb") as stream:
        stream.write(data)
    return hashlib.sha256(data).hexdigest()


def run_install_helm(arguments):
    return subprocess.run([sys.executable, INSTALL_HELM] + arguments, check=False, capture_output=True, text=True,
                          timeout=60)


def test_install_helm_installs_the_binary_of_a_matching_archive(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    digest = fake_helm_archive(str(mirror), "v3.17.2", "linux-arm64", b"arm64 helm\n")
    dest = tmp_path / "out" / "bin" / "helm"
    result = run_install_helm(["--version", "v3.17.2", "--sha256", "linux-arm64=%s" % digest,
                               "--sha256", "linux-amd64=%s" % ("0" * 64), "--base-url", mirror.as_uri(),
                               "--dest", str(dest), "--machine", "aarch64"])
    assert result.returncode == 0, result.stderr
    assert dest.read_bytes() == b"arm64 helm\n"
    assert dest.stat().st_mode & 0o777 == 0o755
    assert result.stdout == "install_helm: helm-v3.17.2-linux-arm64.tar.gz checked and installed as %s\n" % dest


def test_the_image_step_refuses_an_archive_that_is_not_the_pinned_one(tmp_path):
    """The RUN line of execution-environment.yml itself, pointed at a mirror serving another archive."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    version = pinned_helm_version()
    digest = fake_helm_archive(str(mirror), version, "linux-amd64")
    dest = tmp_path / "helm"
    command = helm_run_step()[len("RUN "):]
    command = command.replace("$PYCMD", sys.executable).replace("/output/zerotrust/install_helm.py", INSTALL_HELM)
    command = command.replace('"$HELM_BASE_URL"', mirror.as_uri()).replace("/output/zerotrust/bin/helm", str(dest))
    result = subprocess.run(command.split() + ["--machine", "x86_64"], check=False, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert result.stderr == "install_helm: helm-%s-linux-amd64.tar.gz has SHA-256 %s, expected %s; refusing it\n" % (
        version, digest, pinned_sums()["linux-amd64"])
    assert not dest.exists()


@pytest.mark.parametrize("arguments, message", [
    (["--sha256", "linux-amd64=abc"], "install_helm: --sha256 'linux-amd64=abc' is not <platform>=<64 hex digits>\n"),
    (["--sha256", "linux-amd64=%s" % ("0" * 64), "--machine", "s390x"],
     "install_helm: no helm archive is pinned for machine 's390x'; known machines: aarch64, amd64, arm64, x86_64\n"),
    (["--sha256", "linux-amd64=%s" % ("0" * 64), "--machine", "aarch64"],
     "install_helm: no SHA-256 is pinned for linux-arm64 (pinned: linux-amd64)\n"),
    (["--sha256", "linux-amd64=%s" % ("0" * 64), "--machine", "x86_64", "--version", "v9.9.9"],
     "install_helm: cannot download {mirror}/helm-v9.9.9-linux-amd64.tar.gz: "),
    (["--sha256", "linux-amd64={wrong_member_digest}", "--machine", "x86_64", "--version", "v0.0.1"],
     "install_helm: the archive has no linux-amd64/helm\n"),
])
def test_install_helm_refuses_with_one_line(tmp_path, arguments, message):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    wrong_member_digest = fake_helm_archive(str(mirror), "v0.0.1", "linux-amd64", member="linux-amd64/helm.exe")
    values = {"mirror": mirror.as_uri(), "wrong_member_digest": wrong_member_digest}
    arguments = [argument.format(**values) for argument in arguments]
    if "--version" not in arguments:
        arguments += ["--version", "v3.17.2"]
    dest = tmp_path / "helm"
    result = run_install_helm(arguments + ["--base-url", mirror.as_uri(), "--dest", str(dest)])
    assert result.returncode == 1
    assert result.stderr.startswith(message.format(**values))
    assert result.stderr.count("\n") == 1
    assert not dest.exists()


# --- extensions/awx/configure.yml against a stand-in controller ---------------------------------

AWX_DIR = os.path.join(REPO, "extensions", "awx")
CONFIGURE = os.path.join(AWX_DIR, "configure.yml")
FINISHED_JOB = {"status": "successful", "failed": False, "finished": "2026-11-26T12:00:00Z", "started": None,
                "elapsed": 1.0, "event_processing_finished": True}
SUB_COLLECTIONS = ("credentials", "instance_groups", "labels", "notification_templates_started",
                   "notification_templates_success", "notification_templates_error", "galaxy_credentials",
                   "success_nodes", "failure_nodes", "always_nodes")


class StandInController:
    """Objects by collection, every request, and the few endpoints configure.yml's modules use."""

    def __init__(self):
        self.objects = {}
        self.requests = []
        self.next_id = 1
        self.add("organizations", {"name": "Default"})
        machine = self.add("credential_types", {"name": "Machine", "kind": "ssh", "managed": True})
        self.add("credentials", {"name": "zerotrust.cilium nodes", "credential_type": machine["id"], "organization": 1})

    def add(self, collection, data):
        identifier = self.next_id
        self.next_id += 1
        url = "/api/v2/%s/%d/" % (collection, identifier)
        item = dict(data, id=identifier, url=url, type=collection.rstrip("s"), scm_revision="",
                    related={name: url + name + "/" for name in ("update", "survey_spec") + SUB_COLLECTIONS},
                    summary_fields={})
        if collection == "projects":
            item["summary_fields"]["current_update"] = {"id": self.next_id}
            self.next_id += 1
        item["associations"] = {name: [] for name in SUB_COLLECTIONS}
        self.objects.setdefault(collection, []).append(item)
        return item

    def created(self, collection):
        return [body for method, path, body in self.requests if method == "POST" and path == "/api/v2/%s/" % collection]

    def find(self, collection, identifier):
        return next(item for item in self.objects.get(collection, []) if item["id"] == identifier)

    def handle(self, method, path, query, body):
        parts = [part for part in path.split("/") if part][2:]  # after api/v2
        if method == "GET" and parts and parts[0] in ("project_updates", "inventory_updates"):
            return 200, dict(FINISHED_JOB, id=int(parts[1]), url=path)
        if len(parts) == 1 and method == "GET":
            # Job templates are the unified job templates the workflow nodes look up.
            items = self.objects.get("job_templates" if parts[0] == "unified_job_templates" else parts[0], [])
            for key in ("name", "or__name", "identifier"):
                if key in query:
                    items = [item for item in items if item.get(key.replace("or__", "")) == query[key]]
            if "or__id" in query:
                items = [item for item in self.objects.get(parts[0], []) if str(item["id"]) == query["or__id"]] or items
            public = [{key: value for key, value in item.items() if key != "associations"} for item in items]
            return 200, {"count": len(public), "results": public, "next": None}
        if len(parts) == 1 and method == "POST":
            return 201, {key: value for key, value in self.add(parts[0], body).items() if key != "associations"}
        item = self.find(parts[0], int(parts[1]))
        if len(parts) == 2:
            if method == "PATCH":
                item.update(body)
            return 200, {key: value for key, value in item.items() if key != "associations"}
        sub = parts[2]
        if sub == "update" and method == "POST":
            update_id = self.next_id
            self.next_id += 1
            return 202, {"id": update_id, "status": "pending", "url": "/api/v2/inventory_updates/%d/" % update_id}
        if sub == "create_approval_template" and method == "POST":
            approval = self.add("workflow_approval_templates", body)
            item["unified_job_template"] = approval["id"]
            return 201, {key: value for key, value in approval.items() if key != "associations"}
        if sub == "survey_spec":
            if method == "POST":
                item["survey_spec"] = body
            return 200, item.get("survey_spec", {})
        if sub in SUB_COLLECTIONS:
            if method == "POST":
                if body.get("disassociate"):
                    item["associations"][sub].remove(body["id"])
                else:
                    item["associations"][sub].append(body["id"])
                return 204, None
            results = [{"id": identifier} for identifier in item["associations"][sub]]
            return 200, {"count": len(results), "results": results, "next": None}
        return 404, {"detail": "not in the stand-in: %s %s" % (method, path)}


def serve(controller):
    class Handler(BaseHTTPRequestHandler):
        def answer(self, method):
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null") if length else {}
            controller.requests.append((method, url.path, body))
            status, payload = controller.handle(method, url.path, query, body)
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-API-Product-Name", "AWX")
            self.send_header("X-API-Product-Version", "24.6.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.answer("GET")

        def do_POST(self):
            self.answer("POST")

        def do_PATCH(self):
            self.answer("PATCH")

        def log_message(self, *arguments):
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def controller():
    stand_in = StandInController()
    server = serve(stand_in)
    stand_in.address = "http://127.0.0.1:%d" % server.server_address[1]
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()


def run_configure(controller, extra_vars, environment=None):
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("CONTROLLER_", "TOWER_", "ZEROTRUST_AWX_"))}
    env.update({"CONTROLLER_HOST": controller.address, "CONTROLLER_OAUTH_TOKEN": "stand-in-token",
                "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "False"})
    env.update(environment or {})
    return subprocess.run([tool("ansible-playbook"), CONFIGURE, "-e", json.dumps(extra_vars)], check=False,
                          capture_output=True, text=True, env=env, timeout=600)


def awx_json(*path):
    with open(os.path.join(AWX_DIR, *path)) as stream:
        return json.load(stream)


BASE_VARS = {"zerotrust_awx_scm_url": "https://git.example.com/platform/zerotrust.cilium.git",
             "zerotrust_awx_scm_branch": "v0.1.0",
             "zerotrust_awx_ee_image": "registry.example.com/platform/zerotrust-cilium-ee:0.1.0"}


def test_configure_creates_everything_a_launch_needs(controller, tmp_path):
    kubeconfig = tmp_path / "prod.conf"
    kubeconfig.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [],
                                          "contexts": [], "current-context": "stand-in-kubeconfig-marker"}))
    result = run_configure(controller, dict(BASE_VARS, zerotrust_awx_kubeconfig_file=str(kubeconfig)))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "stand-in-kubeconfig-marker" not in result.stdout + result.stderr

    (environment,) = controller.created("execution_environments")
    assert environment["image"] == BASE_VARS["zerotrust_awx_ee_image"]
    (project,) = controller.created("projects")
    expected_project = ("git", BASE_VARS["zerotrust_awx_scm_url"], "v0.1.0")
    assert (project["scm_type"], project["scm_url"], project["scm_branch"]) == expected_project
    types_by_name = {body["name"]: body for body in controller.created("credential_types")}
    for name in ("kubeconfig", "bearer_token"):
        definition = awx_json("credential_types", name + ".json")
        # Injector templates reach the controller as written, for the controller to render.
        assert types_by_name[definition["name"]]["injectors"] == definition["injectors"]
        assert types_by_name[definition["name"]]["inputs"] == definition["inputs"]
    (credential,) = controller.created("credentials")
    assert credential["inputs"] == {"kubeconfig": kubeconfig.read_text()}
    kubeconfig_type = next(item for item in controller.objects["credential_types"]
                           if item["name"] == awx_json("credential_types", "kubeconfig.json")["name"])
    assert credential["credential_type"] == kubeconfig_type["id"]
    (source,) = controller.created("inventory_sources")
    assert (source["source"], source["source_path"]) == ("scm", "inventories/example/hosts.yml")
    synced = "/api/v2/inventory_sources/%d/update/" % controller.objects["inventory_sources"][0]["id"]
    assert synced in [path for method, path, body in controller.requests if method == "POST"]

    definitions = load_yaml(os.path.join(AWX_DIR, "job_templates.yml"))
    templates = {body["name"]: body for body in controller.created("job_templates")}
    assert sorted(templates) == sorted(template["name"] for template in definitions["zerotrust_awx_job_templates"])
    node_credentials = {item["id"] for item in controller.objects["credentials"]}
    for definition in definitions["zerotrust_awx_job_templates"]:
        body = templates[definition["name"]]
        assert body["playbook"] == definition["playbook"]
        assert body["ask_variables_on_launch"] is False and body["survey_enabled"] is True
        assert body["allow_simultaneous"] is False
        for key, value in definition.items():
            if key.startswith("ask_"):
                assert body[key] is value, (definition["name"], key)
        stored = next(item for item in controller.objects["job_templates"] if item["name"] == definition["name"])
        assert stored["survey_spec"] == awx_json("surveys", definition["survey"])
        assert set(stored["associations"]["credentials"]) == node_credentials
    assert controller.created("workflow_job_templates") == []


def test_configure_stores_a_bearer_token_credential_from_the_environment(controller):
    result = run_configure(controller, dict(BASE_VARS, zerotrust_awx_kube_auth="bearer_token",
                                            zerotrust_awx_api_server_url="https://192.0.2.10:6443"),
                           {"ZEROTRUST_AWX_BEARER_TOKEN": "stand-in-bearer-token-marker"})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "stand-in-bearer-token-marker" not in result.stdout + result.stderr
    (credential,) = controller.created("credentials")
    assert credential["inputs"] == {"host": "https://192.0.2.10:6443", "bearer_token": "stand-in-bearer-token-marker",
                                    "ssl_ca_cert": "", "insecure_skip_tls_verify": False}
    bearer_type = next(item for item in controller.objects["credential_types"]
                       if item["name"] == awx_json("credential_types", "bearer_token.json")["name"])
    assert credential["credential_type"] == bearer_type["id"]


def test_configure_without_a_secret_only_checks_the_credential_exists(controller):
    result = run_configure(controller, BASE_VARS)
    assert result.returncode != 0
    assert "configure: there is no credential 'zerotrust.cilium cluster' of type 'zerotrust.cilium Kubernetes " \
           "kubeconfig' yet; give its secret once, with -e zerotrust_awx_kubeconfig_file=<path>." in result.stdout
    assert controller.created("credentials") == []
    assert controller.created("job_templates") == []


def test_configure_creates_nothing_without_the_nodes_credential(controller):
    controller.objects["credentials"] = []
    result = run_configure(controller, BASE_VARS)
    assert result.returncode != 0
    assert "Machine credential(s) named 'zerotrust.cilium nodes' (zerotrust_awx_machine_credential_name); it " \
           "needs one of each." in result.stdout
    assert [method for method, path, body in controller.requests if method != "GET"] == []


@pytest.mark.parametrize("extra_vars, message", [
    ({"zerotrust_awx_ee_image": "registry.example.com/ee:1"}, "configure: set zerotrust_awx_scm_url"),
    (dict(BASE_VARS, zerotrust_awx_kube_auth="token"), "zerotrust_awx_kube_auth"),
])
def test_configure_stops_before_asking_the_controller_anything(controller, extra_vars, message):
    result = run_configure(controller, extra_vars)
    assert result.returncode != 0
    assert message in result.stdout
    assert controller.requests == []


def test_configure_creates_the_render_approve_apply_workflow(controller, tmp_path):
    kubeconfig = tmp_path / "prod.conf"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    result = run_configure(controller, dict(BASE_VARS, zerotrust_awx_kubeconfig_file=str(kubeconfig),
                                            zerotrust_awx_workflow=True))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    (workflow,) = controller.created("workflow_job_templates")
    assert workflow["ask_variables_on_launch"] is False and workflow["allow_simultaneous"] is False
    nodes = {node["identifier"]: node for node in controller.objects["workflow_job_template_nodes"]}
    site = next(item for item in controller.objects["job_templates"] if item["name"] == "zerotrust.cilium site")
    assert (nodes["render"]["unified_job_template"], nodes["render"]["extra_data"]) == (site["id"], {"zerotrust_mode": "render"})
    assert (nodes["apply"]["unified_job_template"], nodes["apply"]["extra_data"]) == (site["id"], {"zerotrust_mode": "apply"})
    (approval,) = controller.objects["workflow_approval_templates"]
    assert nodes["approve"]["unified_job_template"] == approval["id"] and approval["timeout"] == 86400
    assert nodes["render"]["associations"]["success_nodes"] == [nodes["approve"]["id"]]
    assert nodes["approve"]["associations"]["success_nodes"] == [nodes["apply"]["id"]]
    assert nodes["apply"]["associations"]["success_nodes"] == []
