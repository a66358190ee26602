import doctest

from nas_core import fidelity
from nas_core.fidelity import LEARNED_PROGRESS, MIN_FINISHED_AT_LENGTH, TrialLength, next_trial_epochs


def test_the_documented_examples_hold():
    assert doctest.testmod(fidelity).failed == 0


def test_learning_is_measured_from_chance_whatever_the_number_of_classes():
    for classes in (2, 5, 50):
        chance = 1.0 / classes
        below = chance + (LEARNED_PROGRESS - 0.01) * (1 - chance)
        above = chance + (LEARNED_PROGRESS + 0.01) * (1 - chance)
        finished = [TrialLength(10, True, chance, True)] * (MIN_FINISHED_AT_LENGTH - 1)
        assert next_trial_epochs(10, [*finished, TrialLength(10, True, below, True)], chance=chance,
                                 max_epochs=1000) == 20
        assert next_trial_epochs(10, [*finished, TrialLength(10, True, above, True)], chance=chance,
                                 max_epochs=1000) == 10


def test_pruned_trials_count_as_finished_but_only_succeeded_ones_score():
    pruned = [TrialLength(10, True, 0.99)] * MIN_FINISHED_AT_LENGTH  # pruned: not scored, whatever they showed
    assert next_trial_epochs(10, pruned, chance=0.5, max_epochs=1000) == 10  # nothing succeeded: no evidence
    assert next_trial_epochs(10, [*pruned, TrialLength(10, True, 0.5, True)], chance=0.5, max_epochs=1000) == 20


def test_lengths_stay_within_the_epoch_bound():
    near_chance = [TrialLength(300, True, 0.5, True)] * MIN_FINISHED_AT_LENGTH
    assert next_trial_epochs(300, near_chance, chance=0.5, max_epochs=500) == 300
    assert next_trial_epochs(300, near_chance, chance=0.5, max_epochs=600) == 600
