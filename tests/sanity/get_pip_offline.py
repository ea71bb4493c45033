"""Offline stand-in for the get-pip script ansible-test downloads.

ansible-test bootstraps pip into each virtual environment it creates by running a
get-pip script it fetches from the internet and caches under
``~/.ansible/test/cache/get_pip_<version>.py``.  This file takes that place:

* ``python get_pip_offline.py --install-stand-in`` (run with the project's venv Python)
  copies this file to the cache path for the pip version the installed ansible-test asks
  for, so ansible-test finds it and downloads nothing;
* run by ansible-test as the bootstrap script, it installs pip from the interpreter's own
  ``ensurepip`` wheel and then runs ``pip install`` with ansible-test's arguments (the
  pinned pip version), so the machine's pip configuration (index, certificates,
  constraints) applies as it does to every other install.
"""

import os
import shutil
import subprocess
import sys

CACHE_DIR = os.path.expanduser(os.path.join("~", ".ansible", "test", "cache"))
# Arguments of get-pip that pip itself does not take.
GET_PIP_ONLY_OPTIONS = ("--no-setuptools", "--no-wheel")


def wanted_pip_version():
    """Return the pip version the installed ansible-test bootstraps."""
    from ansible_test._internal import python_requirements

    class _AnyPython:  # get_venv_packages only reads .version
        version = "%d.%d" % sys.version_info[:2]

    return python_requirements.get_venv_packages(_AnyPython())["pip"]


def install_stand_in():
    version = wanted_pip_version()
    os.makedirs(CACHE_DIR, exist_ok=True)
    target = os.path.join(CACHE_DIR, "get_pip_%s.py" % version.replace(".", "_"))
    shutil.copyfile(os.path.abspath(__file__), target)
    print("get-pip stand-in for pip %s installed at %s" % (version, target))


def bootstrap(arguments):
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
    pip_arguments = [argument for argument in arguments if argument not in GET_PIP_ONLY_OPTIONS]
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + pip_arguments)


def main():
    arguments = sys.argv[1:]
    if arguments == ["--install-stand-in"]:
        install_stand_in()
    else:
        bootstrap(arguments)


if __name__ == "__main__":
    main()
