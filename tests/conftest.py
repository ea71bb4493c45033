"""Make ``ansible_collections.zerotrust.cilium`` importable for bare pytest.

When the checkout is not already at ``.../ansible_collections/zerotrust/cilium`` (as it is
under ansible-test), a symlink to it is made under ``.build/pytest`` and that folder is put
first on ``sys.path``.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _collection_parent():
    parts = ROOT.split(os.sep)
    if len(parts) >= 3 and parts[-3:-2] == ["ansible_collections"]:
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


sys.path.insert(0, _collection_parent())
