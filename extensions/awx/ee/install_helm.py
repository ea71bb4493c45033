"""Install a pinned helm release into the execution environment image, checked by SHA-256.

execution-environment.yml runs this in the builder stage of ``ansible-builder build``:

    $PYCMD install_helm.py --version v3.17.2 \\
        --sha256 linux-amd64=<sum> --sha256 linux-arm64=<sum> \\
        --base-url https://get.helm.sh --dest /output/zerotrust/bin/helm

It picks the archive for the machine it runs on (``helm-<version>-linux-amd64.tar.gz`` on
x86_64), downloads it from ``--base-url``, refuses it unless its SHA-256 is the pinned one
for that platform, and writes the ``helm`` binary from it to ``--dest`` (mode 0755). Every
failure exits non-zero with one line naming what was wrong, so the image build stops there.
The base image's Python may be old: standard library only, Python 3.6 syntax.
"""

import argparse
import hashlib
import io
import os
import platform
import sys
import tarfile
import urllib.request

# uname -m -> the architecture name in helm's archive names.
ARCHITECTURES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
}


class InstallError(Exception):
    """A reason to stop the image build, as one line."""


def platform_name(machine):
    """Return helm's platform name (``linux-amd64``) for a ``uname -m`` machine name."""
    architecture = ARCHITECTURES.get(machine.lower())
    if architecture is None:
        raise InstallError(
            "no helm archive is pinned for machine %r; known machines: %s"
            % (machine, ", ".join(sorted(ARCHITECTURES))))
    return "linux-" + architecture


def parse_sums(pairs):
    """Turn ``["linux-amd64=<64 hex>", ...]`` into ``{"linux-amd64": "<64 hex>"}``."""
    sums = {}
    for pair in pairs:
        name, separator, digest = pair.partition("=")
        digest = digest.strip().lower()
        if not separator or not name or len(digest) != 64 or any(char not in "0123456789abcdef" for char in digest):
            raise InstallError("--sha256 %r is not <platform>=<64 hex digits>" % pair)
        sums[name] = digest
    return sums


def archive_name(version, platform_label):
    return "helm-%s-%s.tar.gz" % (version, platform_label)


def download(url, timeout):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # nosec: pinned URL, checked below
            return response.read()
    except (OSError, ValueError) as error:
        raise InstallError("cannot download %s: %s" % (url, error)) from error


def check_sha256(data, expected, name):
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise InstallError("%s has SHA-256 %s, expected %s; refusing it" % (name, actual, expected))


def extract_binary(data, member, dest):
    """Write the archive member ``member`` (a regular file) to ``dest`` with mode 0755."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            try:
                info = archive.getmember(member)
            except KeyError:
                raise InstallError("the archive has no %s" % member) from None
            if not info.isfile():
                raise InstallError("%s in the archive is not a regular file" % member)
            binary = archive.extractfile(info).read()
    except tarfile.TarError as error:
        raise InstallError("the archive cannot be read: %s" % error) from error
    directory = os.path.dirname(dest)
    if directory:
        os.makedirs(directory, exist_ok=True)
    partial = dest + ".partial"
    with open(partial, "wb") as stream:
        stream.write(binary)
    os.chmod(partial, 0o755)
    os.replace(partial, dest)


def install(version, sums, base_url, dest, machine, timeout=120):
    """Download, check and install helm ``version`` for ``machine``; return the archive name."""
    platform_label = platform_name(machine)
    if platform_label not in sums:
        raise InstallError(
            "no SHA-256 is pinned for %s (pinned: %s)" % (platform_label, ", ".join(sorted(sums)) or "none"))
    name = archive_name(version, platform_label)
    data = download(base_url.rstrip("/") + "/" + name, timeout)
    check_sha256(data, sums[platform_label], name)
    extract_binary(data, platform_label + "/helm", dest)
    return name


def main(argv=None):
    parser = argparse.ArgumentParser(description="Install a pinned helm release, checked by SHA-256.")
    parser.add_argument("--version", required=True, help="helm release, e.g. v3.17.2")
    parser.add_argument("--sha256", action="append", default=[], metavar="PLATFORM=SUM",
                        help="pinned SHA-256 of helm-<version>-<platform>.tar.gz; repeat per platform")
    parser.add_argument("--base-url", default="https://get.helm.sh", help="where the release archives are")
    parser.add_argument("--dest", required=True, help="path of the helm binary to write")
    parser.add_argument("--machine", default=platform.machine(), help="uname -m of the target (default: this machine)")
    arguments = parser.parse_args(argv)
    try:
        name = install(arguments.version, parse_sums(arguments.sha256), arguments.base_url, arguments.dest,
                       arguments.machine)
    except InstallError as error:
        sys.stderr.write("install_helm: %s\n" % error)
        return 1
    sys.stdout.write("install_helm: %s checked and installed as %s\n" % (name, arguments.dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
