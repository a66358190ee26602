"""A few evaluations of the NAS-Bench-201 benchmark through the library's strategies."""

from __future__ import annotations

import json

import pytest

from bench import nb201


@pytest.mark.parametrize("strategy", ["evolution", "tpe"])
def test_nb201_prints_the_result_as_the_last_json_line(strategy, capsys):
    nb201.main(["--strategy", strategy, "--evals", "15", "--seeds", "2", "--jobs", "1"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"strategy", "evals", "seeds", "mean_incumbent", "std", "random_mean_incumbent"} <= set(result)
    assert (result["strategy"], result["evals"], result["seeds"]) == (strategy, 15, 2)
    optimum = max(nb201._mean_accuracy().values())
    for score in (result["mean_incumbent"], result["random_mean_incumbent"]):
        assert 80.0 < score <= optimum  # a real architecture's mean accuracy, never above the table's best


def test_one_run_is_reproducible():
    assert nb201.run_once("evolution", {}, 12, 3) == nb201.run_once("evolution", {}, 12, 3)


def test_held_out_seeds_start_where_asked():
    assert nb201.run_many("evolution", {}, 12, 2, 1, first_seed=5) == [nb201.run_once("evolution", {}, 12, seed)
                                                                       for seed in (5, 6)]


def test_the_pareto_objective_prints_a_hypervolume_table_and_its_json_last(capsys):
    nb201.main(["--objective", "pareto", "--strategy", "evolution", "--evals", "12", "--seeds", "2", "--jobs", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["objective"] == "pareto" and (result["evals"], result["seeds"]) == (12, 2)
    assert sorted(result["hypervolume"]) == ["evolution", "pareto evolution", "random"]
    assert all(0.0 < entry["mean"] <= 1.0 for entry in result["hypervolume"].values())
    assert lines[-2].startswith("best: ")
    with pytest.raises(SystemExit):
        nb201.main(["--evals", "12"])  # without --objective pareto a strategy is required


def test_the_warm_start_comparison_prints_four_searches_per_strategy(capsys):
    nb201.main(["--warm-start", "--strategy", "tpe", "--evals", "6", "--seeds", "2", "--jobs", "1"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["warm_start"] and (result["evals"], result["seeds"]) == (6, 2)
    assert sorted(result["incumbent"]["tpe"]) == ["cold", "long", "warm", "warm_with_seeds"]
    seeded = nb201.seeded_records(nb201.search("tpe", {}, 3, 0))
    assert [record.number for record in seeded] == [-3, -2, -1] and all(record.seeded for record in seeded)
