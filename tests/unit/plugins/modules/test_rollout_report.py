# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/modules/rollout_report.py: main() with ansible-core's
``patch_module_args`` writing into a temporary directory: what is written, modes, a second
run, check mode, diff mode and bad input turned into fail_json with nothing written."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

from module_runner import run_module

from ansible_collections.zerotrust.cilium.plugins.modules import rollout_report

FILES = ("report.md", "report.html", "reachability.svg")
CONNECTIVITY = {"results": [
    {"name": "w1-w2", "from": "zt-lab-w1", "to": "zt-lab-w2", "protocol": "tcp", "port": 8080, "expected": "allowed",
     "observed": "allowed", "match": True, "kind": "ok", "detail": "connected"},
    {"name": "w2-w1", "from": "zt-lab-w2", "to": "zt-lab-w1", "protocol": "tcp", "port": 8080, "expected": "allowed",
     "observed": "denied", "match": False, "kind": "blocked", "detail": "timed out after 2s"},
]}


def run_main(capsys, args):
    return run_module(rollout_report, capsys, args)


def contents(directory):
    return dict((name, open(os.path.join(directory, name), "rb").read()) for name in FILES
                if os.path.exists(os.path.join(directory, name)))


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_first_run_writes_three_files_and_the_second_changes_nothing(capsys, tmp_path):
    output_dir = str(tmp_path / "report")
    args = {"output_dir": output_dir, "connectivity": CONNECTIVITY, "mode": "render"}
    code, result = run_main(capsys, args)
    assert code == 0, result
    assert result["changed"] is True
    paths = [os.path.join(output_dir, name) for name in FILES]
    assert result["files"] == paths
    assert result["updated"] == paths
    assert result["picture"] == os.path.join(output_dir, "reachability.svg")
    assert result["summary"]["probes"]["blocked"] == 1
    assert "diff" not in result
    written = contents(output_dir)
    assert sorted(written) == sorted(FILES)
    assert written["report.md"].startswith(b"# Cilium zero-trust rollout report\n")
    assert all(mode_of(path) == 0o644 for path in paths)
    assert mode_of(output_dir) & 0o777 == 0o755 & ~current_umask()
    assert sorted(os.listdir(output_dir)) == sorted(FILES)  # no temporary files left

    code, again = run_main(capsys, args)
    assert code == 0
    assert again["changed"] is False
    assert again["updated"] == []
    assert contents(output_dir) == written


def current_umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def test_check_mode_reports_the_change_and_writes_nothing(capsys, tmp_path):
    output_dir = str(tmp_path / "report")
    code, result = run_main(capsys, {"output_dir": output_dir, "connectivity": CONNECTIVITY,
                                     "_ansible_check_mode": True})
    assert code == 0
    assert result["changed"] is True
    assert len(result["updated"]) == 3
    assert not os.path.exists(output_dir)

    run_main(capsys, {"output_dir": output_dir, "connectivity": CONNECTIVITY})
    before = contents(output_dir)
    code, result = run_main(capsys, {"output_dir": output_dir, "connectivity": CONNECTIVITY, "title": "Changed",
                                     "_ansible_check_mode": True})
    assert result["changed"] is True
    assert contents(output_dir) == before


def test_diff_mode_gives_before_and_after_of_each_changed_file(capsys, tmp_path):
    output_dir = str(tmp_path)
    run_main(capsys, {"output_dir": output_dir, "connectivity": CONNECTIVITY})
    old_markdown = contents(output_dir)["report.md"].decode("utf-8")
    code, result = run_main(capsys, {"output_dir": output_dir, "connectivity": CONNECTIVITY,
                                     "generated_at": "2026-11-26T12:00:00Z", "_ansible_diff": True})
    assert code == 0 and result["changed"] is True
    by_file = dict((entry["after_header"], entry) for entry in result["diff"])
    markdown = by_file[os.path.join(output_dir, "report.md")]
    assert markdown["before"] == old_markdown
    assert "- generated at: 2026-11-26T12:00:00Z" in markdown["after"]
    assert markdown["after"] == contents(output_dir)["report.md"].decode("utf-8")
    code, result = run_main(capsys, {"output_dir": output_dir, "connectivity": CONNECTIVITY,
                                     "generated_at": "2026-11-26T12:00:00Z", "_ansible_diff": True})
    assert result["changed"] is False and "diff" not in result


def test_a_new_file_shows_as_absent_in_the_diff(capsys, tmp_path):
    code, result = run_main(capsys, {"output_dir": str(tmp_path), "_ansible_diff": True,
                                     "_ansible_check_mode": True})
    assert code == 0
    assert [entry["before_header"] for entry in result["diff"]] == [
        os.path.join(str(tmp_path), name) + " (absent)" for name in FILES]
    assert all(entry["before"] == "" for entry in result["diff"])


def test_an_existing_file_keeps_its_mode(capsys, tmp_path):
    output_dir = str(tmp_path)
    run_main(capsys, {"output_dir": output_dir, "connectivity": CONNECTIVITY})
    markdown = os.path.join(output_dir, "report.md")
    os.chmod(markdown, 0o600)
    code, result = run_main(capsys, {"output_dir": output_dir, "connectivity": CONNECTIVITY, "title": "New title"})
    assert code == 0 and markdown in result["updated"]
    assert mode_of(markdown) == 0o600
    assert open(markdown).read().startswith("# New title\n")


def test_bad_input_fails_with_one_message_and_writes_nothing(capsys, tmp_path):
    output_dir = str(tmp_path / "report")
    code, result = run_main(capsys, {"output_dir": output_dir,
                                     "nodes": [{"name": "a"}, {"name": "b", "kernel_verdict": "meh"}]})
    assert code == 1
    assert result["failed"] is True
    assert result["msg"] == "rollout_report: nodes[1].kernel_verdict: 'meh' is not one of: ok, warning, failed, unknown"
    assert not os.path.exists(output_dir)


def test_an_output_dir_that_is_a_file_is_refused(capsys, tmp_path):
    path = tmp_path / "report"
    path.write_text(u"not a directory")
    code, result = run_main(capsys, {"output_dir": str(path)})
    assert code == 1
    assert result["msg"] == "rollout_report: output_dir: '%s' exists and is not a directory" % path
    assert path.read_text() == u"not a directory"
