from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..models.experiment_create_strategy import ExperimentCreateStrategy
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.budget import Budget
    from ..models.experiment_create_search_space import ExperimentCreateSearchSpace
    from ..models.experiment_create_strategy_settings import (
        ExperimentCreateStrategySettings,
    )
    from ..models.objective import Objective
    from ..models.pruner import Pruner
    from ..models.warm_start import WarmStart


T = TypeVar("T", bound="ExperimentCreate")


@_attrs_define
class ExperimentCreate:
    """
    Attributes:
        dataset_id (str):
        auto_model (bool | Unset): Retrain and export the best trial when the search ends. Default: True.
        budget (Budget | Unset):
        concurrency (int | Unset): Trials running at once across all workers. Default: 1.
        name (None | str | Unset):
        objective (Objective | Unset):
        pruner (Pruner | Unset):
        search_space (ExperimentCreateSearchSpace | Unset): Overrides of the default search space; GET /v1/search-space
            documents the grammar.
        seed (int | None | Unset):
        strategy (ExperimentCreateStrategy | Unset):  Default: ExperimentCreateStrategy.EVOLUTION.
        strategy_settings (ExperimentCreateStrategySettings | Unset): Overrides of the strategy's defaults, e.g.
            {"population_size": 20} for evolution or {"refine_fraction": 0} for tpe; an unknown name or a wrong type is a
            422 that lists the strategy's settings.
        warm_start (None | Unset | WarmStart): Seed the strategy with earlier experiments' finished trials.
    """

    dataset_id: str
    auto_model: bool | Unset = True
    budget: Budget | Unset = UNSET
    concurrency: int | Unset = 1
    name: None | str | Unset = UNSET
    objective: Objective | Unset = UNSET
    pruner: Pruner | Unset = UNSET
    search_space: ExperimentCreateSearchSpace | Unset = UNSET
    seed: int | None | Unset = UNSET
    strategy: ExperimentCreateStrategy | Unset = ExperimentCreateStrategy.EVOLUTION
    strategy_settings: ExperimentCreateStrategySettings | Unset = UNSET
    warm_start: None | Unset | WarmStart = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.warm_start import WarmStart

        dataset_id = self.dataset_id

        auto_model = self.auto_model

        budget: dict[str, Any] | Unset = UNSET
        if not isinstance(self.budget, Unset):
            budget = self.budget.to_dict()

        concurrency = self.concurrency

        name: None | str | Unset
        if isinstance(self.name, Unset):
            name = UNSET
        else:
            name = self.name

        objective: dict[str, Any] | Unset = UNSET
        if not isinstance(self.objective, Unset):
            objective = self.objective.to_dict()

        pruner: dict[str, Any] | Unset = UNSET
        if not isinstance(self.pruner, Unset):
            pruner = self.pruner.to_dict()

        search_space: dict[str, Any] | Unset = UNSET
        if not isinstance(self.search_space, Unset):
            search_space = self.search_space.to_dict()

        seed: int | None | Unset
        if isinstance(self.seed, Unset):
            seed = UNSET
        else:
            seed = self.seed

        strategy: str | Unset = UNSET
        if not isinstance(self.strategy, Unset):
            strategy = self.strategy.value

        strategy_settings: dict[str, Any] | Unset = UNSET
        if not isinstance(self.strategy_settings, Unset):
            strategy_settings = self.strategy_settings.to_dict()

        warm_start: dict[str, Any] | None | Unset
        if isinstance(self.warm_start, Unset):
            warm_start = UNSET
        elif isinstance(self.warm_start, WarmStart):
            warm_start = self.warm_start.to_dict()
        else:
            warm_start = self.warm_start

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "dataset_id": dataset_id,
            }
        )
        if auto_model is not UNSET:
            field_dict["auto_model"] = auto_model
        if budget is not UNSET:
            field_dict["budget"] = budget
        if concurrency is not UNSET:
            field_dict["concurrency"] = concurrency
        if name is not UNSET:
            field_dict["name"] = name
        if objective is not UNSET:
            field_dict["objective"] = objective
        if pruner is not UNSET:
            field_dict["pruner"] = pruner
        if search_space is not UNSET:
            field_dict["search_space"] = search_space
        if seed is not UNSET:
            field_dict["seed"] = seed
        if strategy is not UNSET:
            field_dict["strategy"] = strategy
        if strategy_settings is not UNSET:
            field_dict["strategy_settings"] = strategy_settings
        if warm_start is not UNSET:
            field_dict["warm_start"] = warm_start

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.budget import Budget
        from ..models.experiment_create_search_space import ExperimentCreateSearchSpace
        from ..models.experiment_create_strategy_settings import (
            ExperimentCreateStrategySettings,
        )
        from ..models.objective import Objective
        from ..models.pruner import Pruner
        from ..models.warm_start import WarmStart

        d = dict(src_dict)
        dataset_id = d.pop("dataset_id")

        auto_model = d.pop("auto_model", UNSET)

        _budget = d.pop("budget", UNSET)
        budget: Budget | Unset
        if isinstance(_budget, Unset):
            budget = UNSET
        else:
            budget = Budget.from_dict(_budget)

        concurrency = d.pop("concurrency", UNSET)

        def _parse_name(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        name = _parse_name(d.pop("name", UNSET))

        _objective = d.pop("objective", UNSET)
        objective: Objective | Unset
        if isinstance(_objective, Unset):
            objective = UNSET
        else:
            objective = Objective.from_dict(_objective)

        _pruner = d.pop("pruner", UNSET)
        pruner: Pruner | Unset
        if isinstance(_pruner, Unset):
            pruner = UNSET
        else:
            pruner = Pruner.from_dict(_pruner)

        _search_space = d.pop("search_space", UNSET)
        search_space: ExperimentCreateSearchSpace | Unset
        if isinstance(_search_space, Unset):
            search_space = UNSET
        else:
            search_space = ExperimentCreateSearchSpace.from_dict(_search_space)

        def _parse_seed(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        seed = _parse_seed(d.pop("seed", UNSET))

        _strategy = d.pop("strategy", UNSET)
        strategy: ExperimentCreateStrategy | Unset
        if isinstance(_strategy, Unset):
            strategy = UNSET
        else:
            strategy = ExperimentCreateStrategy(_strategy)

        _strategy_settings = d.pop("strategy_settings", UNSET)
        strategy_settings: ExperimentCreateStrategySettings | Unset
        if isinstance(_strategy_settings, Unset):
            strategy_settings = UNSET
        else:
            strategy_settings = ExperimentCreateStrategySettings.from_dict(
                _strategy_settings
            )

        def _parse_warm_start(data: object) -> None | Unset | WarmStart:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                warm_start_type_0 = WarmStart.from_dict(data)

                return warm_start_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Unset | WarmStart, data)

        warm_start = _parse_warm_start(d.pop("warm_start", UNSET))

        experiment_create = cls(
            dataset_id=dataset_id,
            auto_model=auto_model,
            budget=budget,
            concurrency=concurrency,
            name=name,
            objective=objective,
            pruner=pruner,
            search_space=search_space,
            seed=seed,
            strategy=strategy,
            strategy_settings=strategy_settings,
            warm_start=warm_start,
        )

        return experiment_create
