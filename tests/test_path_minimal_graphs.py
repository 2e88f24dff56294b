"""`python -m experiments.minimal_graphs`: its flags, and (slow) a two-trial run that writes its files."""

from __future__ import annotations

import json

import pytest

from experiments import minimal_graphs


@pytest.mark.parametrize("argv, match", [
    (["--tasks", "xor"], "--tasks='xor' is invalid"),
    (["--data-seeds", "a"], "--data-seeds='a' is invalid"),
    (["--trials", "0"], "--trials=0 / --restarts=4 is invalid"),
])
def test_bad_flags_end_in_one_line_and_status_2(argv, match, capsys):
    with pytest.raises(SystemExit) as e:
        minimal_graphs.main(argv)
    assert e.value.code == 2 and match in capsys.readouterr().err


@pytest.mark.slow
def test_two_trials_of_addition_write_the_table(tmp_path):
    rows = minimal_graphs.main(["--trials", "2", "--tasks", "addition", "--data-seeds", "0", "--no-fixed",
                                "--out", str(tmp_path)])
    assert len(rows) == 1 and rows[0]["minimal"]["n"] == 2 and rows[0]["condition_met"]["k"] == 2
    doc = json.loads((tmp_path / "minimal_graphs.json").read_text())
    assert doc["rows"][0]["task"] == "addition" and "budget_per_trial" in doc["rows"][0]
    assert "| addition (min 3) | 0 |" in (tmp_path / "minimal_graphs.md").read_text()
