# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for module_utils/conntrack.py.

Expected numbers are worked out by hand from the kernel's ``nf_conntrack_init_start()``
(net/netfilter/nf_conntrack_core.c), 64-bit, 4 KiB pages:

* buckets = bytes / 16384 / 8, i.e. 8 per MiB;
* 5.15+ (commit d532bcd0b269): > 4 GiB -> 262144, > 1 GiB -> 65536, at least 1024;
  max = buckets;
* before 5.15: > 4 GiB -> 65536, > 1 GiB -> 16384, at least 32; max = 4 * buckets;
* nf_ct_alloc_hashtable rounds buckets up to a multiple of PAGE_SIZE / 8 = 512.

The commit message of d532bcd0b269 states that the new defaults keep the same
nf_conntrack_max as before above 1 GiB (4 x 16384 = 65536, 4 x 65536 = 262144); the
tests check that as an independent cross-check.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.zerotrust.cilium.plugins.module_utils import conntrack
from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import InvalidInput

MIB = 1024 * 1024
GIB = 1024 * MIB


@pytest.mark.parametrize("memory_bytes, sanitized, buckets, maximum", [
    # 512 MiB: 512 * 8 = 4096 buckets (already a multiple of 512)
    (512 * MIB, True, 4096, 4096),
    (512 * MIB, False, 4096, 16384),
    # 1000 MiB: 8000 -> rounded up to 8192
    (1000 * MIB, True, 8192, 8192),
    (1000 * MIB, False, 8192, 32768),
    # 64 MiB: 512; new floor 1024, old floor 32 (512 stays)
    (64 * MIB, True, 1024, 1024),
    (64 * MIB, False, 512, 2048),
    # exactly 1 GiB is not "> 1 GiB": 8192 buckets
    (GIB, True, 8192, 8192),
    (GIB, False, 8192, 32768),
    # 2 GiB: > 1 GiB
    (2 * GIB, True, 65536, 65536),
    (2 * GIB, False, 16384, 65536),
    # exactly 4 GiB is still the "> 1 GiB" branch
    (4 * GIB, True, 65536, 65536),
    (4 * GIB, False, 16384, 65536),
    # one page more than 4 GiB
    (4 * GIB + 4096, True, 262144, 262144),
    (4 * GIB + 4096, False, 65536, 262144),
    (64 * GIB, True, 262144, 262144),
])
def test_kernel_default(memory_bytes, sanitized, buckets, maximum):
    assert conntrack.kernel_default(memory_bytes, sanitized) == (buckets, maximum)


@pytest.mark.parametrize("memory_bytes", [2 * GIB, 3 * GIB, 8 * GIB, 256 * GIB])
def test_sanitized_defaults_keep_the_old_maximum_above_one_gib(memory_bytes):
    assert conntrack.kernel_default(memory_bytes, True)[1] == conntrack.kernel_default(memory_bytes, False)[1]


def test_64k_pages_round_to_8192_buckets():
    # PAGE_SIZE 65536 / 8 = 8192 slots per page: 4096 -> 8192
    assert conntrack.kernel_default(512 * MIB, True, page_size_kib=64) == (8192, 8192)


def test_default_recommendation_for_an_8_gib_node():
    # ansible_memtotal_mb of an "8 GiB" VM is below 8192 but far above 4 GiB: 262144 either way.
    result = conntrack.conntrack_max(7900)
    assert result["nf_conntrack_max"] == 262144
    assert result["nf_conntrack_buckets"] == 262144
    assert result["kernel_default_max"] == 262144
    assert result["sysctl"] == {"net.netfilter.nf_conntrack_max": 262144,
                                "net.netfilter.nf_conntrack_buckets": 262144}


def test_expected_connections_raise_the_table():
    # 500000 * 1.25 = 625000 -> rounded up to 512: 1221 * 512 = 625152.
    result = conntrack.conntrack_max(3900, expected_connections=500000, kernel_version="5.10.0-32-amd64")
    assert result["desired_entries"] == 625000
    assert result["nf_conntrack_max"] == 625152
    assert result["nf_conntrack_buckets"] == 625152
    # pre-5.15, 3900 MiB: 16384 buckets, 65536 max
    assert (result["kernel_default_buckets"], result["kernel_default_max"]) == (16384, 65536)


def test_old_kernel_default_max_is_kept_with_one_bucket_per_entry():
    # pre-5.15 on 2 GiB: max 4 * 16384 = 65536; recommendation keeps 65536 entries and gives
    # them 65536 buckets (average chain 2 instead of 8).
    result = conntrack.conntrack_max(2048, kernel_version="4.18.0-553.el8_10.x86_64")
    assert result["nf_conntrack_max"] == 65536
    assert result["nf_conntrack_buckets"] == 65536
    assert result["kernel_default_buckets"] == 16384


def test_unknown_kernel_takes_the_larger_default_of_both_rules():
    # 512 MiB: 5.15+ gives max 4096, older gives max 16384 -> 16384 either way is safe.
    # ansible_memtotal_mb rounds down: the largest memory reading 512 is 513 MiB - 4 KiB,
    # (513 * 1024 * 1024 - 4096) // 16384 // 8 = 4103 buckets -> 4608; old max 4 * 4608.
    result = conntrack.conntrack_max(512)
    assert result["kernel_default_buckets"] == 4608
    assert result["kernel_default_max"] == 18432
    assert result["nf_conntrack_max"] == 18432


def test_memory_just_below_a_boundary_is_planned_for_the_boundary():
    # 4096 MiB as reported may be up to 4 GiB + 1020 KiB, which is > 4 GiB for the kernel.
    assert conntrack.conntrack_max(4096, kernel_version="6.1")["kernel_default_max"] == 262144
    assert conntrack.conntrack_max(4095, kernel_version="6.1")["kernel_default_max"] == 65536


def test_huge_table_warns_about_memory():
    result = conntrack.conntrack_max(1024, expected_connections=2000000, kernel_version="6.8")
    assert result["warnings"]
    assert "more than a quarter of the node's 1024 MiB" in result["warnings"][0]


@pytest.mark.parametrize("value, version", [
    ("6.1", (6, 1)), ("5.14.0-427.el9.x86_64", (5, 14)), ("6.8.0-45-generic", (6, 8)), ("4.18", (4, 18)),
])
def test_parse_kernel_version(value, version):
    assert conntrack.parse_kernel_version(value) == version


def test_invalid_input_raises_with_message():
    with pytest.raises(InvalidInput) as raised:
        conntrack.conntrack_max(2048, kernel_version="3.10.0-1160.el7.x86_64")
    assert str(raised.value) == ("conntrack_max: kernel_version: '3.10.0-1160.el7.x86_64' is older than 4.18, "
                                 "the oldest kernel the collection supports")


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=1024 * 1024),
       st.integers(min_value=0, max_value=5000000),
       st.sampled_from([None, "4.18", "5.10", "5.15", "6.1"]))
def test_never_below_the_kernel_default(memory_mib, expected, kernel_version):
    result = conntrack.conntrack_max(memory_mib, expected_connections=expected, kernel_version=kernel_version)
    exact = memory_mib * MIB
    for sanitized in ([True, False] if kernel_version is None else
                      [conntrack.parse_kernel_version(kernel_version) >= (5, 15)]):
        buckets, maximum = conntrack.kernel_default(exact, sanitized)
        assert result["nf_conntrack_max"] >= maximum
        assert result["nf_conntrack_buckets"] >= buckets
    assert result["nf_conntrack_max"] >= expected
    assert result["nf_conntrack_buckets"] % 512 == 0
    assert result["nf_conntrack_max"] == result["nf_conntrack_buckets"]
