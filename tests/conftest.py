"""Make ``ansible_collections.zerotrust.cilium`` importable for bare pytest."""

from collection_path import make_importable

make_importable()
