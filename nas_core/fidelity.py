"""How long a search's trials train: long enough that their validation scores tell candidates apart.

A search of a few minutes on a few hundred hard images (photos at 128 px, five classes) trains each candidate for
its ``epochs_per_trial`` of a dozen epochs in seconds, and every candidate ends where it started, near chance: the
leaderboard is a draw and the search has learned nothing. The same networks separate after a few dozen epochs. So a
time-bound search starts at ``epochs_per_trial`` and doubles the length of its next trials while the trials at the
longest length so far have not learned (:func:`next_trial_epochs`); the best of the shorter ones train again at the
new length first, as successive halving promotes its best rung, training on from their shorter runs' weights where
the search kept them (the scheduler's part). When the trials of the longest length have not learned and cannot be
made longer (:func:`not_learned_at_longest`, the doublings spent or the time short), the search stops there: more
trials of a length at which even the best stayed near chance would draw more noise, and its time is better spent on
the one network it hands back.

"Learned" is measured against chance, not against a fixed accuracy, so it means the same for two classes and for
fifty: the best balanced accuracy at that length has gone at least :data:`LEARNED_PROGRESS` of the way from chance
(``1 / classes``) to 1.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from nas_core import ranking

# Trials at the longest length have learned once the best of them is this share of the way from chance to perfect
# balanced accuracy (MNIST's trials reach 0.95 and more of the way within their first dozen epochs; the few hundred
# 128-px photos of bench.budget's photos-small stay below 0.2 of it).
LEARNED_PROGRESS = 0.5
# Trials at a length that must have finished (succeeded or pruned) before their best says anything: three at the first
# length (the references), two at a longer one, whose first trials are the best of the shorter length trained again
# (PROMOTED): when even those have not learned, no newcomer at that length is likely to.
MIN_FINISHED_AT_LENGTH = 3
MIN_FINISHED_WHEN_LENGTHENED = 2
# At most this many doublings: trials of 8× epochs_per_trial.
MAX_DOUBLINGS = 3
# The best trials of the previous length that train again first at a new length.
PROMOTED = 2
# A new length is taken only when this many trials of it fit the time left (the caller's check): the promoted ones.
MIN_TRIALS_AT_LENGTH = 2
# The final model keeps the validation split to choose its weights by (nas_core.final) only while no trial's balanced
# accuracy has gone this share of the way from chance (:func:`hold_out_validation`). A search that got that far has
# shown the data learnable, and on a few hundred images the split's 15% are worth more as training data than as a
# check: on bench.budget's photos-small (150 s, three seeds) the same network scored 0.725, 0.725 and 0.767 on held-back
# images trained on train+val against 0.692, 0.658 and 0.642 trained on train with the split held out. It was a
# quarter: searches on scenes whose best trials reached 0.21-0.23 of the way held the split out, and trained so (150 s
# from scratch) the plain reference scored 0.833, 0.825, 0.833 on scenes seeds 0-2 and 0.773 on scenes-mirrored seed
# 1, against 0.858, 0.835, 0.854 and 0.798 on train+val. Where it is needed, on large-gray, every trial sat at 0.
HOLD_OUT_BELOW_PROGRESS = 0.1
# A time-bound search ends (:func:`outclassed`) once its time share admits only networks that train in less than
# OUTCLASSED_COST of its leader's seconds, and the last OUTCLASSED_STREAK trials, each that cheap, all went at most
# OUTCLASSED_PROGRESS of the leader's way from chance: on bench.budget's mnist5k (one core, three minutes) a reference
# reached 0.988 in 42 s, then the only networks that fit the share (3-30k parameters) ended at 0.14-0.66 for 110 s
# that the final model, which gets a search's unspent minutes, could have trained for.
OUTCLASSED_COST = 0.5
OUTCLASSED_STREAK = 3
OUTCLASSED_PROGRESS = 2 / 3
# A time-bound search ends (:func:`settled`) once SETTLED_AFTER of its minutes have passed and SETTLED_STREAK trials of
# its longest length have finished since the first within the noise of the leader: more trials are then unlikely to
# change the network it hands back, and its final model, which gets the unspent minutes, is where more time pays. On
# bench.budget's scenes (seed 0, one core) the plain reference's final model scored 0.896 on held-back images after
# 420 s of training at 72 px and 0.919 after 900 s at 96 px (nas_core.final.raised_side's sides for those times). An
# 8-minute search that ran its minutes left its final model 460 s (0.867 against the hand-written CNN's 0.912, trained
# for the whole search and model time); one that settled at 367 s left it 540 s (0.913 against 0.888).
SETTLED_AFTER = 0.5
SETTLED_STREAK = 4


@dataclass(frozen=True, slots=True)
class TrialLength:
    """One trial as the length rule sees it: its epochs, whether it has finished (succeeded or pruned), and the
    balanced accuracy of its last validation (None before its first epoch or when it did not finish)."""

    epochs: int
    finished: bool
    balanced_accuracy: float | None = None
    succeeded: bool = False


def progress(balanced_accuracy: float, chance: float) -> float:
    """How far ``balanced_accuracy`` has gone from ``chance`` to 1 (0 at chance or below, 1 at perfect).

    >>> progress(0.2, 0.2), progress(0.6, 0.25), progress(1.0, 0.5)
    (0.0, 0.4666666666666666, 1.0)
    """
    if chance >= 1.0:
        return 1.0
    return max(0.0, (balanced_accuracy - chance) / (1.0 - chance))


def learned(scores: Iterable[float | None], chance: float, *, bar: float = LEARNED_PROGRESS) -> bool:
    """Whether any of ``scores`` (balanced accuracies; None: not scored) has gone ``bar`` of the way from ``chance``
    to 1 (:func:`progress`).

    >>> learned([None, 0.3, 0.65], chance=0.2), learned([None, 0.3], chance=0.2), learned([0.3], 0.2, bar=0.1)
    (True, False, True)
    """
    return any(score is not None and progress(score, chance) >= bar for score in scores)


def unlearned_references(trials: Iterable[tuple[Hashable, float | None, int | None]], *, chance: float | None
                         ) -> dict[Hashable, int] | None:
    """The trials of hand-designed reference networks among ``trials`` ``(id, balanced accuracy, the reference's
    rank in the order of preference, None for other networks)`` while none of them has learned (:func:`progress`
    from ``chance`` below :data:`LEARNED_PROGRESS`), as id → rank; None once one has, or when ``chance`` is unknown.
    When every score is noise, the designs known to work on small image datasets are a better bet than whichever
    proposal drew the lowest loss, and the design measured best on long schedules the best bet of them
    (:func:`nas_core.ranking.pick_within_noise` compares them by rank).

    >>> rows = [("a", 0.55, None), ("b", 0.52, 1), ("c", 0.6, 0)]
    >>> unlearned_references(rows, chance=0.5)
    {'b': 1, 'c': 0}
    >>> unlearned_references([*rows, ("d", 0.8, None)], chance=0.5) is None
    True
    """
    trials = list(trials)
    if chance is None or learned((score for _, score, _ in trials), chance):
        return None
    return {trial_id: rank for trial_id, _, rank in trials if rank is not None}


def next_trial_epochs(base: int, trials: Sequence[TrialLength], *, chance: float, max_epochs: int) -> int:
    """Epochs for the search's next trials: the longest length so far (``base`` at first), doubled when at least
    :data:`MIN_FINISHED_AT_LENGTH` trials of that length have finished (:data:`MIN_FINISHED_WHEN_LENGTHENED` once
    it is longer than ``base``) and the best balanced accuracy among them has not gone :data:`LEARNED_PROGRESS` of
    the way from ``chance`` to 1; at most :data:`MAX_DOUBLINGS` doublings and ``max_epochs``. Whether the longer
    trials fit the time left is the caller's to check.

    >>> near_chance = [TrialLength(12, True, 0.3, True) for _ in range(3)]
    >>> next_trial_epochs(12, near_chance, chance=0.2, max_epochs=1000)
    24
    >>> next_trial_epochs(12, near_chance[:2], chance=0.2, max_epochs=1000)  # two finished: too early to tell
    12
    >>> next_trial_epochs(12, [*near_chance, TrialLength(12, True, 0.9, True)], chance=0.2, max_epochs=1000)
    12
    >>> next_trial_epochs(12, [*near_chance, TrialLength(24, False)], chance=0.2, max_epochs=1000)  # 24 running
    24
    >>> next_trial_epochs(12, [*near_chance, *[TrialLength(24, True, 0.3, True)] * 2], chance=0.2, max_epochs=1000)
    48
    >>> next_trial_epochs(12, [TrialLength(96, True, 0.3, True)] * 3, chance=0.2, max_epochs=1000)  # 3 doublings
    96
    """
    longest = max([base, *(trial.epochs for trial in trials)])
    if longest >= base * 2 ** MAX_DOUBLINGS or longest * 2 > max_epochs:
        return longest
    return longest * 2 if not_learned_at_longest(base, trials, chance=chance) else longest


def not_learned_at_longest(base: int, trials: Sequence[TrialLength], *, chance: float) -> bool:
    """Whether enough trials at the longest length so far have finished to tell (:data:`MIN_FINISHED_AT_LENGTH`,
    :data:`MIN_FINISHED_WHEN_LENGTHENED` once it is longer than ``base``) and the best balanced accuracy among the
    succeeded ones has not gone :data:`LEARNED_PROGRESS` of the way from ``chance`` to 1. When the trials cannot be
    lengthened any more, more of them at that length are unlikely to learn either (the scheduler's part).

    >>> near_chance = [TrialLength(12, True, 0.3, True) for _ in range(3)]
    >>> not_learned_at_longest(12, near_chance, chance=0.2), not_learned_at_longest(12, near_chance[:2], chance=0.2)
    (True, False)
    >>> not_learned_at_longest(12, [*near_chance, TrialLength(12, True, 0.9, True)], chance=0.2)
    False
    """
    longest = max([base, *(trial.epochs for trial in trials)])
    at_length = [trial for trial in trials if trial.epochs == longest]
    if sum(trial.finished for trial in at_length) < (MIN_FINISHED_AT_LENGTH if longest == base
                                                     else MIN_FINISHED_WHEN_LENGTHENED):
        return False
    scores = [trial.balanced_accuracy for trial in at_length if trial.succeeded and trial.balanced_accuracy is not None]
    return bool(scores) and progress(max(scores), chance) < LEARNED_PROGRESS


def promotion_picks(runs: Iterable[tuple[Hashable, float, float | None, int]], *,
                    ranks: Mapping[Hashable, int] | None = None, val_images: int | None = None) -> list[Hashable]:
    """The runs of one length ``(id, metric value, validation loss, number)`` that train first at twice that length,
    in order: the leader by the metric, then the lowest validation loss (near chance, where the metric is a draw,
    the loss still ranks), then the metric's order again, :data:`PROMOTED` at most; ties go to the earlier number.
    The search keeps these runs' weights, so both promoted runs train on from where they stopped.

    With ``ranks`` (the reference designs' runs → their place in the order of preference,
    :func:`nas_core.space.reference_candidates`) and ``val_images``, the references within the noise of the leader's
    metric (:func:`nas_core.ranking.noise_floor`) come right after the leader, by rank, before the loss: a search
    promotes only from a length at which nothing has learned, where a short run's loss says little about what a long
    schedule makes of a network, and the order of preference was measured on long schedules. On ``bench.budget``'s
    ``photos-small`` (seed 1, 3 minutes) the three references ended 12 epochs at 0.389, 0.389 and 0.431 accuracy on 72
    validation images, one draw; the loss promoted the residual network over the plain one by 0.002 (1.432 against
    1.434), the MBConv network led at 24 epochs, and its final model scored 0.708 on the held-back images (the
    baseline 0.875). With the references first, the plain network was promoted, led at 48 epochs (0.681 against the
    residual network's 0.597) and its final model scored 0.908 (the baseline 0.892).

    >>> promotion_picks([("a", 0.3, 1.5, 1), ("b", 0.4, 1.6, 2), ("c", 0.4, 1.4, 3), ("d", 0.2, 1.3, 4)])
    ['b', 'd']
    >>> promotion_picks([("a", 0.3, None, 1), ("b", 0.4, 1.6, 2)])
    ['b', 'a']
    >>> runs = [("plain", 0.389, 1.434, 1), ("residual", 0.389, 1.432, 2), ("mbconv", 0.431, 1.36, 3)]
    >>> ranks = {"plain": 0, "residual": 1, "mbconv": 2}
    >>> promotion_picks(runs), promotion_picks(runs, ranks=ranks, val_images=72)
    (['mbconv', 'residual'], ['mbconv', 'plain'])
    >>> promotion_picks(runs, ranks=ranks, val_images=100_000)  # on many images 0.431 is a real lead: the loss ranks
    ['mbconv', 'residual']
    """
    runs = list(runs)
    by_metric = sorted(runs, key=lambda run: (-run[1], run[3]))
    by_loss = sorted(runs, key=lambda run: (run[2] if run[2] is not None else float("inf"), run[3]))
    preferred: list[tuple] = []
    if ranks and val_images and by_metric:
        floor = ranking.noise_floor(by_metric[0][1], val_images=val_images)
        preferred = sorted((run for run in runs if run[0] in ranks and run[1] >= floor),
                           key=lambda run: (ranks[run[0]], run[3]))
    chosen: list[Hashable] = []
    for run_id, *_ in (*by_metric[:1], *preferred, *by_loss, *by_metric[1:]):
        if len(chosen) >= PROMOTED:
            break
        if run_id not in chosen:
            chosen.append(run_id)
    return chosen


def promotable(runs: Iterable[tuple[Hashable, float, float | None, int, int, float | None]], *, chance: float,
               ranks: Mapping[Hashable, int] | None = None, val_images: int | None = None) -> set[Hashable]:
    """The runs ``(id, metric value, validation loss, number, epochs, balanced accuracy)`` whose weights a time-bound
    search keeps for a promotion: the :func:`promotion_picks` (with ``ranks`` and ``val_images``) of every length at
    which no run has learned (:func:`progress` from ``chance`` below :data:`LEARNED_PROGRESS`), the lengths a search
    may still double. Once a run of a length has learned, that length is never promoted from and its picks' weights
    may go.

    >>> runs = [("a", 0.3, 1.5, 1, 12, 0.3), ("b", 0.35, 1.6, 2, 12, 0.35), ("c", 0.2, 1.4, 3, 12, 0.2)]
    >>> sorted(promotable(runs, chance=0.2))
    ['b', 'c']
    >>> sorted(promotable([*runs, ("d", 0.4, 1.3, 4, 24, 0.4)], chance=0.2))
    ['b', 'c', 'd']
    >>> sorted(promotable([*runs, ("e", 0.9, 0.3, 5, 12, 0.9)], chance=0.2))
    []
    """
    by_length: dict[int, list[tuple]] = {}
    for run in runs:
        by_length.setdefault(run[4], []).append(run)
    kept: set[Hashable] = set()
    for at_length in by_length.values():
        if not learned((score for *_, score in at_length), chance):
            kept.update(promotion_picks((run[:4] for run in at_length), ranks=ranks, val_images=val_images))
    return kept


def outclassed(runs: Iterable[tuple[int, float | None, float | None, bool]], *, share_seconds: float,
               chance: float) -> bool:
    """Whether more trials of a time-bound search are unlikely to matter: the finished runs ``(number, balanced
    accuracy, seconds its full length trains, succeeded?)`` have a leader (the best succeeded run) that has learned
    (:func:`progress` from ``chance`` at least :data:`LEARNED_PROGRESS`), a new trial may train for less than
    :data:`OUTCLASSED_COST` of the leader's seconds (``share_seconds``), and the last :data:`OUTCLASSED_STREAK` runs
    by number besides the leader each trained for less than that and reached at most :data:`OUTCLASSED_PROGRESS` of
    the leader's progress. The networks the time left admits are then far smaller than the leader and have kept
    landing far below it: the search's time is better spent on its final model (the scheduler's part).

    >>> runs = [(1, 0.98, 40.0, True), (2, 0.4, 8.0, False), (3, 0.6, 9.0, True), (4, 0.3, 7.0, True)]
    >>> outclassed(runs, share_seconds=12.0, chance=0.1)
    True
    >>> outclassed(runs, share_seconds=25.0, chance=0.1)  # the share admits networks half the leader's cost
    False
    >>> outclassed(runs[:3], share_seconds=12.0, chance=0.1)  # two runs besides the leader: too early to tell
    False
    >>> outclassed([*runs, (5, 0.95, 9.0, True)], share_seconds=12.0, chance=0.1)  # a cheap run came close
    False
    >>> outclassed([*runs, (5, 0.3, 30.0, True)], share_seconds=12.0, chance=0.1)  # not cheap: not the share's kind
    False
    >>> outclassed([(1, 0.3, 40.0, True), *runs[1:]], share_seconds=12.0, chance=0.1)  # the leader has not learned
    False
    """
    runs = [run for run in runs if run[1] is not None]
    succeeded = [run for run in runs if run[3]]
    if not succeeded:
        return False
    leader = max(succeeded, key=lambda run: (run[1], -run[0]))
    lead = progress(leader[1], chance)
    if lead < LEARNED_PROGRESS or leader[2] is None or share_seconds >= OUTCLASSED_COST * leader[2]:
        return False
    last = sorted((run for run in runs if run[0] != leader[0]), key=lambda run: run[0])[-OUTCLASSED_STREAK:]
    return len(last) == OUTCLASSED_STREAK and all(
        seconds is not None and seconds < OUTCLASSED_COST * leader[2]
        and progress(score, chance) <= OUTCLASSED_PROGRESS * lead for _, score, seconds, _ in last)


def settled(runs: Iterable[tuple[int, float | None, bool]], *, chance: float, val_images: int,
            elapsed_share: float) -> bool:
    """Whether a time-bound search that has used ``elapsed_share`` of its minutes has settled: of the finished runs
    ``(number, balanced accuracy, succeeded?)`` of its longest length, the leader (the best succeeded run) has
    learned (:func:`progress` from ``chance`` at least :data:`LEARNED_PROGRESS`), and :data:`SETTLED_STREAK` runs have
    finished after the first run within the leader's noise (one standard error on ``val_images``,
    :func:`nas_core.ranking.noise_floor`): no run since has gone beyond it by more than chance would. Never before
    :data:`SETTLED_AFTER` of the minutes, so a search always explores for at least that long.

    >>> runs = [(1, 0.80, True), (2, 0.70, True), (3, 0.81, True), (4, 0.50, False), (5, 0.75, True)]
    >>> settled(runs, chance=0.1, val_images=300, elapsed_share=0.6)  # 1 is within 0.81's noise: 2-5 since
    True
    >>> settled(runs, chance=0.1, val_images=300, elapsed_share=0.4)  # too early
    False
    >>> settled(runs[:4], chance=0.1, val_images=300, elapsed_share=0.6)  # three since 1
    False
    >>> settled([*runs[:2], (3, 0.95, True), *runs[3:]], chance=0.1, val_images=300, elapsed_share=0.6)  # 3 led
    False
    >>> settled([(1, 0.4, True), *runs[1:]], chance=0.1, val_images=300, elapsed_share=0.6)  # 0.81 led from 3 on
    False
    >>> settled([(n, score * 0.5, ok) for n, score, ok in runs], chance=0.1, val_images=300, elapsed_share=0.9)
    False
    """
    if elapsed_share < SETTLED_AFTER:
        return False
    runs = [run for run in runs if run[1] is not None]
    succeeded = [run for run in runs if run[2]]
    if not succeeded:
        return False
    best = max(score for _, score, _ in succeeded)
    if progress(best, chance) < LEARNED_PROGRESS:
        return False
    floor = ranking.noise_floor(best, val_images=val_images) if val_images > 0 else best
    since = min(number for number, score, ok in succeeded if score >= floor)
    return sum(1 for number, *_ in runs if number > since) >= SETTLED_STREAK


def hold_out_validation(scores: Iterable[float | None], *, chance: float | None) -> bool:
    """Whether a final model should train on the train split alone and keep the validation split to choose its
    weights by: some trials were scored (balanced accuracies ``scores``) and none went
    :data:`HOLD_OUT_BELOW_PROGRESS` of the way from ``chance`` to 1 (:func:`progress`). Where nothing has learned, a
    long schedule on train+val with no split left to check it may fit noise and end below the majority rate; where a
    trial has, the split is worth more as training data.

    >>> hold_out_validation([0.52, 0.54, None], chance=0.5), hold_out_validation([0.52, 0.7], chance=0.5)
    (True, False)
    >>> hold_out_validation([0.25, 0.29], chance=0.2)  # five classes: 0.29 is over a tenth of the way
    False
    >>> hold_out_validation([0.21, 0.27], chance=0.2)
    True
    >>> hold_out_validation([], chance=0.5), hold_out_validation([0.5], chance=None)
    (False, False)
    """
    scores = [score for score in scores if score is not None]
    return chance is not None and bool(scores) and not learned(scores, chance, bar=HOLD_OUT_BELOW_PROGRESS)
