#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: rollout_report
short_description: Write the rollout report with the reachability picture
version_added: 0.1.0
description:
  - Writes the report of a rollout or of the verify phase into O(output_dir), for a person to read
    at a glance. C(report.md) is Markdown, C(report.html) the same content as one self-contained
    page (the picture inline, no network needed to read it), C(reachability.svg) the picture.
  - "The report has these sections, in this order: a summary table of verdicts; the nodes
    (kernel verdict, the kernel findings that need attention, the sysctls read back); the
    network plan (MTU, pod CIDR, routing); the MTU probes, failing paths first; the Cilium Helm
    values against the chart defaults (changed and added keys only); the policy set (files,
    kinds, declared flows and their verdicts, violations); the reachability picture with a
    text version of the matrix; the connectivity truth table, mismatches first."
  - The picture is one grid. Rows are sources, columns destinations (namespace/workload, and
    entities such as C(world) or C(kube-apiserver) where the policy proof has them). Every port
    of the proof is merged into one cell per pair, coloured by the most open planned verdict
    over the ports; allowed is green, allowed but restricted at L7 amber, allowed for some
    pod pairs only striped, denied red, not evaluated hatched grey. The cell lists the allowed
    ports (C(8080/TCP GET /api/v1/data)). Cells a declared flow covers get a thick blue
    outline. With O(connectivity), a cell whose probes all agree with the plan gets a check
    mark, a cell where one disagrees a red cross whose tooltip lists the failed probes.
  - Without O(policy_proof) the grid is drawn from O(connectivity) alone, the probes'
    expected verdicts as colours and their observed ones as marks.
  - Every option but O(output_dir) is optional. A section without data says C(not collected)
    and why.
  - The module never reads the clock. The same input gives byte-identical files, and a run
    that would write the same content changes nothing and reports C(changed=false).
  - Bad input fails before anything is written, with one message naming each field, its
    value and what is accepted.
author:
  - zerotrust.cilium contributors (@zerotrust-cilium)
options:
  output_dir:
    description:
      - Directory to write C(report.md), C(report.html) and C(reachability.svg) to. It is created
        (mode C(0755)) when it does not exist.
      - Files are written atomically and only when their content differs. New files get mode
        C(0644); existing files keep their mode and owner.
    type: path
    required: true
  title:
    description:
      - Title of the report and of the picture.
    type: str
    default: Cilium zero-trust rollout report
  cluster_name:
    description:
      - Name of the cluster, printed under the title.
    type: str
  mode:
    description:
      - How the cluster phase ran, printed under the title. In V(render) mode a missing
        O(connectivity) is explained by there being no cluster to probe.
    type: str
    choices: [render, apply]
  generated_at:
    description:
      - Time stamp printed under the title when given, for example
        C({{ ansible_date_time.iso8601 }}). The module never stamps the time itself, so that
        identical input gives identical files; a time stamp that changes on every run makes
        every run rewrite the files.
    type: str
  nodes:
    description:
      - One entry per node, with C(name) (required, unique), C(kernel_release),
        C(kernel_verdict) (V(ok), V(warning), V(failed) or V(unknown), default V(unknown)),
        C(kernel_findings) and C(sysctls). Other keys are refused.
      - C(kernel_findings) lists C(item) (such as C(CONFIG_BPF)), C(status) (V(ok), V(warning),
        V(missing), V(unknown) or V(waived)) and C(detail). The entries of C(checked) of the
        kernel verdict can be passed as they are; their other keys are ignored.
      - C(sysctls) lists C(key), C(expected), C(running) and C(status), one of V(ok), V(differs) (the
        running value is not the one wanted), V(best effort) (a key the node may refuse, which
        it did) or V(unknown).
      - The report lists the nodes sorted by name.
    type: list
    elements: raw
  network_plan:
    description:
      - The network plan, with C(mtu) (the result of the C(zerotrust.cilium.cilium_mtu) filter),
        C(pod_cidr) (C(zerotrust.cilium.pod_cidr_plan)) and C(routing)
        (C(zerotrust.cilium.routing_mode)); any may be missing. This is the C(plan) role's
        C(__plan_network) fact.
    type: dict
  mtu_probes:
    description:
      - MTU probe results, one per path, with C(source) (the node the probes were sent from),
        C(target) (or C(name), as M(zerotrust.cilium.mtu_probe) returns it), C(address),
        C(expected_mtu), C(path_mtu), C(status) (V(ok), V(refused_locally), V(black_hole) or
        V(unreachable)) and C(message). Other keys are ignored, so the module's C(results) can
        be passed with a C(source) added.
    type: list
    elements: raw
  cilium_values:
    description:
      - The computed Cilium Helm values. The report shows the flattened keys whose value
        differs from the defaults of the Cilium chart the collection ships (changed keys) or
        that the chart does not set (added keys).
    type: dict
  policy_proof:
    description:
      - The content of the C(proof.json) the C(network_policy) role writes, C(files), C(proof)
        and C(summary). C(proof.matrix) (one table per port) gives the picture's planned
        verdicts, C(proof.flows) the declared flows.
    type: dict
  connectivity:
    description:
      - What C(zerotrust.cilium.connectivity_check) returned. C(results) lists the probes with
        C(name), C(from), C(to), C(protocol), C(port), C(method), C(path), C(flow), C(expected)
        (V(allowed) or V(denied)), C(observed) (V(allowed), V(denied), V(l7_denied),
        V(no_listener) or V(error)), C(match) (boolean), C(kind) (V(ok), V(blocked), V(open)
        or V(probe_error)) and C(detail).
      - Without C(results), the probes are read from C(matrix.cells) (C("SRC|TGT") to a list
        of probes).
      - A probe without C(observed), C(match) and C(kind) was listed but not run (commands
        mode); it is shown as not run and marks no cell.
      - Probes are matched to the picture's cells by name, so C(from) and C(to) must be named
        like the policy proof's rows and columns (C(namespace/workload)). Endpoints the proof
        does not have get rows and columns of their own, after the proof's.
    type: dict
attributes:
  check_mode:
    support: full
    description: Builds the report and reports which files would change, without writing.
  diff_mode:
    support: full
    description: Returns the old and new content of each file that changes.
  platform:
    support: full
    platforms: posix
    description: Runs on the controller (C(delegate_to) C(localhost)).
notes:
  - Run it once on the controller (C(delegate_to) C(localhost), C(run_once)).
  - The HTML page needs no network; the picture is inline and the CSS is in the page.
seealso:
  - module: zerotrust.cilium.network_policy_plan
  - module: zerotrust.cilium.mtu_probe
"""

EXAMPLES = r"""
- name: Write the rollout report with the reachability picture
  zerotrust.cilium.rollout_report:
    output_dir: "{{ zerotrust_output_dir }}"
    cluster_name: "{{ zerotrust_cluster_name }}"
    mode: render
    network_plan: "{{ __plan_network }}"
    cilium_values: "{{ __cilium_values.values }}"
    policy_proof: "{{ lookup('ansible.builtin.file', zerotrust_output_dir ~ '/policies/proof.json') | from_json }}"
    # The results of zerotrust.cilium.mtu_probe, each with the node it ran on added as source.
    mtu_probes: "{{ mtu_rows }}"
  delegate_to: localhost
  run_once: true
  register: __report

- name: Print the verdicts
  ansible.builtin.debug:
    msg: >-
      nodes failed {{ __report.summary.nodes.failed }}, bad MTU paths
      {{ __report.summary.mtu_paths.bad }}, probe mismatches
      {{ __report.summary.probes.mismatched }}; picture in {{ __report.picture }}

- name: Draw the lab's open matrix from connectivity results only
  zerotrust.cilium.rollout_report:
    output_dir: /tmp/lab-report
    title: Lab connectivity
    connectivity: "{{ __connectivity }}"
  delegate_to: localhost
"""

RETURN = r"""
files:
  description: The report's files, C(report.md), C(report.html) and C(reachability.svg), whether this
    run had to rewrite them or not.
  returned: always
  type: list
  elements: str
  sample: [/srv/report/report.md, /srv/report/report.html, /srv/report/reachability.svg]
updated:
  description: The files whose content changed (in check mode, would change).
  returned: always
  type: list
  elements: str
  sample: [/srv/report/report.md]
picture:
  description: Path of the reachability picture.
  returned: always
  type: str
  sample: /srv/report/reachability.svg
summary:
  description: Counts a playbook can print.
  returned: always
  type: dict
  contains:
    nodes:
      description: Nodes by kernel verdict (C(ok), C(warning), C(failed), C(unknown)) and C(total).
      type: dict
      sample: {ok: 2, warning: 0, failed: 1, unknown: 0, total: 3}
    sysctls:
      description: Sysctls read back on all nodes, C(total), C(ok) and C(not_ok).
      type: dict
      sample: {total: 36, ok: 35, not_ok: 1}
    mtu_paths:
      description: MTU probe paths, C(total), C(ok) and C(bad) (any status but C(ok)).
      type: dict
      sample: {total: 6, ok: 5, bad: 1}
    values:
      description: Helm value keys C(changed) from and C(added) to the chart defaults.
      type: dict
      sample: {changed: 24, added: 15}
    policy:
      description: Whether the policy proof holds (C(proven), null without a proof), the number of declared C(flows)
        and of C(violations).
      type: dict
      sample: {proven: true, flows: 2, violations: 0}
    pairs:
      description: Cells of the picture (source and destination pairs, all ports merged) by planned verdict,
        C(allowed), C(restricted) (at L7), C(partly) and C(denied).
      type: dict
      sample: {allowed: 4, restricted: 1, partly: 0, denied: 24}
    probes:
      description: Connectivity probes, C(probes) in all, C(matched), C(mismatched), the mismatches by kind,
        C(blocked), C(open) and C(errors), and C(not_run) (listed without a result).
      type: dict
      sample: {probes: 12, matched: 11, mismatched: 1, blocked: 0, open: 1, errors: 0, not_run: 0}
    not_collected:
      description: The inputs that were not given (C(nodes), C(network_plan), C(mtu_probes), C(cilium_values),
        C(policy_proof), C(connectivity)).
      type: list
      elements: str
      sample: [connectivity]
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native

from ansible_collections.zerotrust.cilium.plugins.module_utils.errors import CollectionError, InvalidInput
from ansible_collections.zerotrust.cilium.plugins.module_utils.report import (
    DEFAULT_TITLE,
    FILE_NAMES,
    MODES,
    MODULE_NAME,
    PICTURE_FILE,
    build_report,
    file_changes,
)

NEW_FILE_MODE = 0o644
NEW_DIR_MODE = 0o755


def read_existing(path):
    """The current text of a report file, None when there is none."""
    if not os.path.exists(path):
        return None
    if not os.path.isfile(path):
        raise InvalidInput("output_dir", os.path.dirname(path), "holds %s, which is not a regular file"
                           % os.path.basename(path), where=MODULE_NAME)
    with open(path, "rb") as stream:
        return stream.read().decode("utf-8", "replace")


def write_atomically(module, path, text):
    """Write through a temporary file in the same directory, then rename over the target."""
    existed = os.path.exists(path)
    handle, temporary = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=os.path.dirname(path))
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(to_bytes(text, errors="surrogate_or_strict"))
        module.atomic_move(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    if not existed:
        os.chmod(path, NEW_FILE_MODE)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            output_dir=dict(type="path", required=True),
            title=dict(type="str", default=DEFAULT_TITLE),
            cluster_name=dict(type="str"),
            mode=dict(type="str", choices=list(MODES)),
            generated_at=dict(type="str"),
            nodes=dict(type="list", elements="raw"),
            network_plan=dict(type="dict"),
            mtu_probes=dict(type="list", elements="raw"),
            cilium_values=dict(type="dict"),
            policy_proof=dict(type="dict"),
            connectivity=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    output_dir = params["output_dir"]
    paths = [os.path.join(output_dir, name) for name in FILE_NAMES]
    try:
        built = build_report(**params)
        if os.path.exists(output_dir) and not os.path.isdir(output_dir):
            raise InvalidInput("output_dir", output_dir, "exists and is not a directory", where=MODULE_NAME)
        existing = dict((name, read_existing(path)) for name, path in zip(FILE_NAMES, paths))
    except CollectionError as err:
        module.fail_json(msg=str(err))
    except (IOError, OSError) as err:
        module.fail_json(msg="%s: cannot read the report in %s: %s" % (MODULE_NAME, output_dir, to_native(err)))

    changes = file_changes(built["files"], existing)
    result = dict(
        changed=bool(changes) or not os.path.isdir(output_dir),
        files=paths,
        updated=[os.path.join(output_dir, change["name"]) for change in changes],
        picture=os.path.join(output_dir, PICTURE_FILE),
        summary=built["summary"],
    )
    if module._diff and changes:
        result["diff"] = [dict(
            before_header=os.path.join(output_dir, change["name"]) + ("" if change["before"] is not None else " (absent)"),
            after_header=os.path.join(output_dir, change["name"]),
            before=change["before"] or "",
            after=change["after"],
        ) for change in changes]
    if module.check_mode or not result["changed"]:
        module.exit_json(**result)

    try:
        if not os.path.isdir(output_dir):
            os.makedirs(output_dir, NEW_DIR_MODE)
        for change in changes:
            write_atomically(module, os.path.join(output_dir, change["name"]), change["after"])
    except (IOError, OSError) as err:
        module.fail_json(msg="%s: cannot write the report to %s: %s" % (MODULE_NAME, output_dir, to_native(err)),
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
