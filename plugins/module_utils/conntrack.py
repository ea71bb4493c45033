# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection-tracking table sizing (``nf_conntrack_max`` / ``nf_conntrack_buckets``).

Pure Python: nothing here imports ``ansible``.  The ``zerotrust.cilium.conntrack_max``
filter is a thin wrapper over ``conntrack_max``.

The kernel's own defaults come from ``nf_conntrack_init_start()`` in
``net/netfilter/nf_conntrack_core.c`` when no ``hashsize`` module parameter is given:

* buckets start at ``memory / 16384 / sizeof(struct hlist_head)``, i.e. 8 per MiB on a
  64-bit kernel;
* Linux 5.15 and later (commit d532bcd0b269, "netfilter: conntrack: sanitize table
  size default settings"): more than 4 GiB gives 262144 buckets (64-bit only), more
  than 1 GiB gives 65536, never fewer than 1024; ``nf_conntrack_max = buckets``
  (``max_factor = 1``: every connection is hashed twice, original and reply, so a full
  table averages two entries per bucket);
* before 5.15: more than 4 GiB gives 65536 buckets, more than 1 GiB 16384, never fewer
  than 32; ``nf_conntrack_max = 4 * buckets`` (``max_factor = 4``, a full table
  averages eight entries per bucket);
* ``nf_ct_alloc_hashtable()`` then rounds the bucket count up to whole pages
  (``PAGE_SIZE / sizeof(struct hlist_nulls_head)``, 512 with 4 KiB pages), before
  ``nf_conntrack_max`` is computed from it, and refuses more than
  ``INT_MAX / sizeof(struct hlist_nulls_head)`` buckets.

The recommendation keeps the 5.15 ratio (one bucket per entry) on every kernel, so
lookups stay short, and never goes below what the kernel would pick by itself for
either count.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import decimal
import re

from ansible_collections.zerotrust.cilium.plugins.module_utils import checks
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput

FILTER_NAME = "conntrack_max"

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
HLIST_HEAD_BYTES = 8
INT_MAX = (1 << 31) - 1
PAGE_SIZES_KIB = (4, 16, 64)
DEFAULT_HEADROOM = 0.25
MAX_HEADROOM = 10
# 64 TiB: larger than any node this collection targets, small enough to catch a
# value given in kB or bytes by mistake.
MAX_MEMORY_MIB = 64 * 1024 * 1024
OLDEST_KERNEL = (4, 18)
SANITIZED_DEFAULTS_KERNEL = (5, 15)
# Rough size of one conntrack entry (struct nf_conn in its slab cache on x86_64); only
# used to warn when a requested table would eat a large share of the node's memory.
APPROX_ENTRY_BYTES = 320
MEMORY_WARNING_SHARE = 0.25


def _round_up(number, multiple):
    return -(-number // multiple) * multiple


def _slots_per_page(page_size_kib):
    return page_size_kib * KIB // HLIST_HEAD_BYTES


def max_buckets(page_size_kib=4):
    """Largest bucket count ``nf_ct_alloc_hashtable`` accepts after its rounding."""
    slots = _slots_per_page(page_size_kib)
    return (INT_MAX // HLIST_HEAD_BYTES) // slots * slots


def kernel_default(memory_bytes, sanitized_defaults=True, page_size_kib=4):
    """``(nf_conntrack_buckets, nf_conntrack_max)`` a 64-bit kernel picks for ``memory_bytes``.

    ``memory_bytes`` is the kernel's total RAM (``MemTotal``).  ``sanitized_defaults``
    selects the Linux 5.15+ rule, otherwise the rule of the kernels before it.
    """
    buckets = memory_bytes // 16384 // HLIST_HEAD_BYTES
    if sanitized_defaults:
        if memory_bytes > 4 * GIB:
            buckets = 262144
        elif memory_bytes > GIB:
            buckets = 65536
        buckets = max(buckets, 1024)
        max_factor = 1
    else:
        if memory_bytes > 4 * GIB:
            buckets = 65536
        elif memory_bytes > GIB:
            buckets = 16384
        buckets = max(buckets, 32)
        max_factor = 4
    buckets = _round_up(buckets, _slots_per_page(page_size_kib))
    return buckets, max_factor * buckets


def parse_kernel_version(value):
    """``(major, minor)`` from ``"5.15"``, ``"6.8.0-45-generic"``, ``"4.18.0-553.el8_10.x86_64"``."""
    if not isinstance(value, str):
        raise InvalidInput("kernel_version", value,
                           "is not a kernel release string such as '6.1' or '5.14.0-427.el9.x86_64'",
                           where=FILTER_NAME)
    match = re.match(r"^\s*(\d+)\.(\d+)", value)
    if not match:
        raise InvalidInput("kernel_version", value,
                           "is not a kernel release string such as '6.1' or '5.14.0-427.el9.x86_64'",
                           where=FILTER_NAME)
    version = (int(match.group(1)), int(match.group(2)))
    if version < OLDEST_KERNEL:
        raise InvalidInput("kernel_version", value, "is older than %d.%d, the oldest kernel the collection supports"
                           % OLDEST_KERNEL, where=FILTER_NAME)
    return version


def conntrack_max(memory_mib, expected_connections=0, headroom=DEFAULT_HEADROOM, kernel_version=None,
                  page_size_kib=4):
    """Recommend ``nf_conntrack_max`` and ``nf_conntrack_buckets`` for a node.

    ``memory_mib`` is ``MemTotal`` in MiB (``ansible_memtotal_mb``).  The entry count is
    the larger of the kernel's default maximum and ``expected_connections * (1 +
    headroom)``; buckets equal entries (rounded up to whole pages), never fewer than the
    kernel's default buckets.  ``kernel_version`` picks the kernel rule; without it the
    larger default of both rules is the floor, which is right on any kernel.

    ``ansible_memtotal_mb`` is rounded down, so the kernel defaults are taken for the
    largest memory that rounds down to ``memory_mib``: that can only raise the floor.
    """
    memory = checks.whole_number(FILTER_NAME, "memory_mib", memory_mib, 1, MAX_MEMORY_MIB)
    expected = checks.whole_number(FILTER_NAME, "expected_connections", expected_connections, 0)
    headroom_fraction = checks.fraction(FILTER_NAME, "headroom", headroom, MAX_HEADROOM)
    page_size = checks.whole_number(FILTER_NAME, "page_size_kib", page_size_kib, 1)
    if page_size not in PAGE_SIZES_KIB:
        raise InvalidInput("page_size_kib", page_size_kib,
                           "is not one of: %s" % ", ".join(str(size) for size in PAGE_SIZES_KIB), where=FILTER_NAME)

    # The largest whole number of pages that ansible_memtotal_mb rounds down to memory.
    memory_upper_bound = (memory + 1) * MIB - page_size * KIB
    if kernel_version is None:
        sanitized = kernel_default(memory_upper_bound, True, page_size)
        legacy = kernel_default(memory_upper_bound, False, page_size)
        default_buckets = max(sanitized[0], legacy[0])
        default_max = max(sanitized[1], legacy[1])
        formula = "larger of the Linux 5.15+ and pre-5.15 defaults (kernel_version not given)"
    else:
        kernel = parse_kernel_version(kernel_version)
        sanitized_rule = kernel >= SANITIZED_DEFAULTS_KERNEL
        default_buckets, default_max = kernel_default(memory_upper_bound, sanitized_rule, page_size)
        formula = "Linux 5.15+ default" if sanitized_rule else "pre-5.15 kernel default"

    desired_entries = int((decimal.Decimal(expected) * (1 + headroom_fraction)).to_integral_value(
        rounding=decimal.ROUND_CEILING))
    slots = _slots_per_page(page_size)
    entries = max(default_max, desired_entries)
    buckets = max(_round_up(entries, slots), default_buckets)
    if buckets > max_buckets(page_size):
        raise InvalidInput("expected_connections", expected_connections,
                           "with headroom needs %d buckets, more than the kernel allocates (%d)"
                           % (buckets, max_buckets(page_size)), where=FILTER_NAME)

    if desired_entries > default_max:
        reason = ("%d expected connections plus %s%% headroom need %d entries, above the kernel default of %d "
                  "(%s)" % (expected, checks.percent_text(headroom_fraction), desired_entries, default_max, formula))
    else:
        reason = ("the kernel default of %d entries (%s) already covers %d expected connections plus %s%% headroom"
                  % (default_max, formula, expected, checks.percent_text(headroom_fraction)))
    reason += "; buckets equal entries (rounded up to %d per page), as Linux 5.15+ does by default" % slots

    warnings = []
    table_bytes = buckets * APPROX_ENTRY_BYTES + buckets * HLIST_HEAD_BYTES
    if table_bytes > MEMORY_WARNING_SHARE * memory * MIB:
        warnings.append("a full table of %d entries takes roughly %d MiB (about %d bytes per entry), more than "
                        "a quarter of the node's %d MiB" % (buckets, table_bytes // MIB, APPROX_ENTRY_BYTES, memory))

    return {
        "nf_conntrack_max": buckets,
        "nf_conntrack_buckets": buckets,
        "kernel_default_max": default_max,
        "kernel_default_buckets": default_buckets,
        "kernel_formula": formula,
        "desired_entries": desired_entries,
        "memory_mib": memory,
        "sysctl": {
            "net.netfilter.nf_conntrack_max": buckets,
            "net.netfilter.nf_conntrack_buckets": buckets,
        },
        "reason": reason,
        "warnings": warnings,
    }
