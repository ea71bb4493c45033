# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the generators in tools/ share: reading a checked source file and writing (or
checking) the generated module. Each generator keeps its own rendering."""

from __future__ import absolute_import, division, print_function

import argparse
import gzip
import hashlib
import os


def read_checked(name, digest, source_dir, what):
    """Bytes of ``name`` in ``source_dir`` (plain or .gz), refused unless its SHA-256 is ``digest``."""
    plain = os.path.join(source_dir, name)
    if os.path.exists(plain):
        with open(plain, "rb") as handle:
            data = handle.read()
    else:
        with gzip.open(plain + ".gz", "rb") as handle:
            data = handle.read()
    found = hashlib.sha256(data).hexdigest()
    if found != digest:
        raise SystemExit("%s: sha256 %s, expected %s (not the published %s)" % (name, found, digest, what))
    return data


def main(argv, description, render, source_dir, output, sources_help, script):
    """Command line of a generator: write the module, or with --check only compare (exit 1 if stale)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--source-dir", default=source_dir,
                        help="directory with the %s, plain or .gz (default: %%(default)s)" % sources_help)
    parser.add_argument("--output", default=output, help="module to write (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the module differs")
    args = parser.parse_args(argv)
    text = render(args.source_dir)
    current = None
    if os.path.exists(args.output):
        with open(args.output, encoding="utf-8") as handle:
            current = handle.read()
    if args.check:
        if current != text:
            print("%s is out of date; run %s" % (args.output, script))
            return 1
        return 0
    if current != text:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    return 0
