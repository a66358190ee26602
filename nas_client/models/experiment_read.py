from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.experiment_read_status import ExperimentReadStatus
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.best_trial import BestTrial
    from ..models.experiment_read_budget import ExperimentReadBudget
    from ..models.experiment_read_objective import ExperimentReadObjective
    from ..models.experiment_read_pruner import ExperimentReadPruner
    from ..models.experiment_read_reproducibility import ExperimentReadReproducibility
    from ..models.experiment_read_search_space import ExperimentReadSearchSpace
    from ..models.experiment_read_strategy_settings import (
        ExperimentReadStrategySettings,
    )
    from ..models.latency_device import LatencyDevice
    from ..models.progress import Progress
    from ..models.screened import Screened
    from ..models.warm_start_read import WarmStartRead


T = TypeVar("T", bound="ExperimentRead")


@_attrs_define
class ExperimentRead:
    """
    Attributes:
        auto_model (bool):
        best (BestTrial | None):
        budget (ExperimentReadBudget):
        concurrency (int):
        created_at (datetime.datetime):
        dataset_id (None | str):
        detail (None | str):
        elapsed_s (float):
        finished_at (datetime.datetime | None):
        id (str):
        name (str):
        objective (ExperimentReadObjective):
        progress (Progress):
        pruner (ExperimentReadPruner):
        reproducibility (ExperimentReadReproducibility):
        screened (Screened):
        search_space (ExperimentReadSearchSpace):
        seed (int):
        status (ExperimentReadStatus):
        strategy (str):
        strategy_settings (ExperimentReadStrategySettings):
        updated_at (datetime.datetime):
        latency_device (LatencyDevice | None | Unset): The CPU and runtime the trials' latencies were measured on
            (reproducibility.latency_device and latency_devices_other, typed); null until a trial has measured.
        warm_start (None | Unset | WarmStartRead): The warm start asked for at creation and how many source trials seed
            the strategy; null for a cold start.
    """

    auto_model: bool
    best: BestTrial | None
    budget: ExperimentReadBudget
    concurrency: int
    created_at: datetime.datetime
    dataset_id: None | str
    detail: None | str
    elapsed_s: float
    finished_at: datetime.datetime | None
    id: str
    name: str
    objective: ExperimentReadObjective
    progress: Progress
    pruner: ExperimentReadPruner
    reproducibility: ExperimentReadReproducibility
    screened: Screened
    search_space: ExperimentReadSearchSpace
    seed: int
    status: ExperimentReadStatus
    strategy: str
    strategy_settings: ExperimentReadStrategySettings
    updated_at: datetime.datetime
    latency_device: LatencyDevice | None | Unset = UNSET
    warm_start: None | Unset | WarmStartRead = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.best_trial import BestTrial
        from ..models.latency_device import LatencyDevice
        from ..models.warm_start_read import WarmStartRead

        auto_model = self.auto_model

        best: dict[str, Any] | None
        if isinstance(self.best, BestTrial):
            best = self.best.to_dict()
        else:
            best = self.best

        budget = self.budget.to_dict()

        concurrency = self.concurrency

        created_at = self.created_at.isoformat()

        dataset_id: None | str
        dataset_id = self.dataset_id

        detail: None | str
        detail = self.detail

        elapsed_s = self.elapsed_s

        finished_at: None | str
        if isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        id = self.id

        name = self.name

        objective = self.objective.to_dict()

        progress = self.progress.to_dict()

        pruner = self.pruner.to_dict()

        reproducibility = self.reproducibility.to_dict()

        screened = self.screened.to_dict()

        search_space = self.search_space.to_dict()

        seed = self.seed

        status = self.status.value

        strategy = self.strategy

        strategy_settings = self.strategy_settings.to_dict()

        updated_at = self.updated_at.isoformat()

        latency_device: dict[str, Any] | None | Unset
        if isinstance(self.latency_device, Unset):
            latency_device = UNSET
        elif isinstance(self.latency_device, LatencyDevice):
            latency_device = self.latency_device.to_dict()
        else:
            latency_device = self.latency_device

        warm_start: dict[str, Any] | None | Unset
        if isinstance(self.warm_start, Unset):
            warm_start = UNSET
        elif isinstance(self.warm_start, WarmStartRead):
            warm_start = self.warm_start.to_dict()
        else:
            warm_start = self.warm_start

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "auto_model": auto_model,
                "best": best,
                "budget": budget,
                "concurrency": concurrency,
                "created_at": created_at,
                "dataset_id": dataset_id,
                "detail": detail,
                "elapsed_s": elapsed_s,
                "finished_at": finished_at,
                "id": id,
                "name": name,
                "objective": objective,
                "progress": progress,
                "pruner": pruner,
                "reproducibility": reproducibility,
                "screened": screened,
                "search_space": search_space,
                "seed": seed,
                "status": status,
                "strategy": strategy,
                "strategy_settings": strategy_settings,
                "updated_at": updated_at,
            }
        )
        if latency_device is not UNSET:
            field_dict["latency_device"] = latency_device
        if warm_start is not UNSET:
            field_dict["warm_start"] = warm_start

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.best_trial import BestTrial
        from ..models.experiment_read_budget import ExperimentReadBudget
        from ..models.experiment_read_objective import ExperimentReadObjective
        from ..models.experiment_read_pruner import ExperimentReadPruner
        from ..models.experiment_read_reproducibility import (
            ExperimentReadReproducibility,
        )
        from ..models.experiment_read_search_space import ExperimentReadSearchSpace
        from ..models.experiment_read_strategy_settings import (
            ExperimentReadStrategySettings,
        )
        from ..models.latency_device import LatencyDevice
        from ..models.progress import Progress
        from ..models.screened import Screened
        from ..models.warm_start_read import WarmStartRead

        d = dict(src_dict)
        auto_model = d.pop("auto_model")

        def _parse_best(data: object) -> BestTrial | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                best_type_0 = BestTrial.from_dict(data)

                return best_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(BestTrial | None, data)

        best = _parse_best(d.pop("best"))

        budget = ExperimentReadBudget.from_dict(d.pop("budget"))

        concurrency = d.pop("concurrency")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        def _parse_dataset_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        dataset_id = _parse_dataset_id(d.pop("dataset_id"))

        def _parse_detail(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        detail = _parse_detail(d.pop("detail"))

        elapsed_s = d.pop("elapsed_s")

        def _parse_finished_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                finished_at_type_0 = datetime.datetime.fromisoformat(data)

                return finished_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        finished_at = _parse_finished_at(d.pop("finished_at"))

        id = d.pop("id")

        name = d.pop("name")

        objective = ExperimentReadObjective.from_dict(d.pop("objective"))

        progress = Progress.from_dict(d.pop("progress"))

        pruner = ExperimentReadPruner.from_dict(d.pop("pruner"))

        reproducibility = ExperimentReadReproducibility.from_dict(
            d.pop("reproducibility")
        )

        screened = Screened.from_dict(d.pop("screened"))

        search_space = ExperimentReadSearchSpace.from_dict(d.pop("search_space"))

        seed = d.pop("seed")

        status = ExperimentReadStatus(d.pop("status"))

        strategy = d.pop("strategy")

        strategy_settings = ExperimentReadStrategySettings.from_dict(
            d.pop("strategy_settings")
        )

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        def _parse_latency_device(data: object) -> LatencyDevice | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                latency_device_type_0 = LatencyDevice.from_dict(data)

                return latency_device_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(LatencyDevice | None | Unset, data)

        latency_device = _parse_latency_device(d.pop("latency_device", UNSET))

        def _parse_warm_start(data: object) -> None | Unset | WarmStartRead:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                warm_start_type_0 = WarmStartRead.from_dict(data)

                return warm_start_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Unset | WarmStartRead, data)

        warm_start = _parse_warm_start(d.pop("warm_start", UNSET))

        experiment_read = cls(
            auto_model=auto_model,
            best=best,
            budget=budget,
            concurrency=concurrency,
            created_at=created_at,
            dataset_id=dataset_id,
            detail=detail,
            elapsed_s=elapsed_s,
            finished_at=finished_at,
            id=id,
            name=name,
            objective=objective,
            progress=progress,
            pruner=pruner,
            reproducibility=reproducibility,
            screened=screened,
            search_space=search_space,
            seed=seed,
            status=status,
            strategy=strategy,
            strategy_settings=strategy_settings,
            updated_at=updated_at,
            latency_device=latency_device,
            warm_start=warm_start,
        )

        experiment_read.additional_properties = d
        return experiment_read

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
