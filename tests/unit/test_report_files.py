"""The run-folder reader and the file writers both reports share."""

import json

import pytest

from ansible_collections.netlab.lab.plugins.plugin_utils.report import files


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "f.txt"
    files.atomic_write(target, "old")
    files.atomic_write(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_a_failed_atomic_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), files.atomic_target(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_read_run_parses_each_raw_file_and_reports_the_refused(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "m.json").write_text(json.dumps({"scale": 10}))
    (tmp_path / "raw" / "a.json").write_text("1")
    (tmp_path / "raw" / "b.json").write_text("{broken")
    (tmp_path / "raw" / ".a.json.tmp.json").write_text("2")

    def reader(meta):
        return lambda path: json.loads(path.read_text()) * meta["scale"]

    meta, records, problems = files.read_run(tmp_path, "m.json", reader)
    assert meta == {"scale": 10}
    assert records == {"a": 10}
    assert len(problems) == 1 and problems[0].startswith("b.json: ") and problems[0].endswith(", skipped")


def test_read_run_refuses_a_folder_without_its_metadata(tmp_path):
    with pytest.raises(files.ResultError, match=r"no readable m\.json"):
        files.read_run(tmp_path, "m.json", lambda meta: json.loads)


def test_list_runs_oldest_first_without_symlinks_or_unnamed_runs(tmp_path):
    for name, meta in (("b", {"run_id": "b", "started": "2"}), ("a", {"run_id": "a", "started": "1"}),
                       ("c", {"started": "0"}), ("d", "not a dict")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(json.dumps(meta))
    (tmp_path / "latest").symlink_to(tmp_path / "b")
    assert [path.name for path, _ in files.list_runs(tmp_path, "run.json")] == ["a", "b"]


def test_tables():
    assert files.fmt(None) == "-"
    assert files.fmt(1.23456) == "1.23"
    assert files.fmt(1.25, 0) == "1"
    assert files.text_table(["a", "bb"], [["ccc", "d"]]) == ["a    bb", "---  --", "ccc  d"]
    assert files.markdown_tail(["a"], [["1"]], "c.png", "alt", ["n"]) == (
        "\n| a |\n|---|\n| 1 |\n\n![alt](c.png)\n\n> n\n")
