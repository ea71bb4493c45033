"""Where ``ansible_collections.zerotrust.cilium`` resolves to this checkout.

Used by tests/conftest.py (Python imports under bare pytest), tests/integration/helpers.py
(ANSIBLE_COLLECTIONS_PATH for ansible-playbook) and the benchmarks in bench/.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def collections_parent():
    """Return the folder holding ``ansible_collections/zerotrust/cilium`` for this checkout.

    When the checkout already sits at ``.../ansible_collections/zerotrust/cilium`` (as under
    ansible-test) that folder's parent is used; otherwise a symlink to the checkout is made
    under ``.build/pytest`` (once; concurrent runs may race to create it).
    """
    parts = ROOT.split(os.sep)
    if len(parts) >= 3 and parts[-3] == "ansible_collections":
        return os.sep.join(parts[:-3])
    base = os.path.join(ROOT, ".build", "pytest")
    link = os.path.join(base, "ansible_collections", "zerotrust", "cilium")
    if not os.path.islink(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        try:
            os.symlink(ROOT, link)
        except FileExistsError:
            pass
    return base


def make_importable():
    """Put the collection's parent folder first on ``sys.path``."""
    parent = collections_parent()
    if parent not in sys.path:
        sys.path.insert(0, parent)
    return parent
