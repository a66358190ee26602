from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..models.objective_metric import ObjectiveMetric
from ..models.objective_minimize_type_0_item import ObjectiveMinimizeType0Item
from ..models.objective_mode import ObjectiveMode
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.constraints import Constraints


T = TypeVar("T", bound="Objective")


@_attrs_define
class Objective:
    """
    Attributes:
        constraints (Constraints | Unset):
        latency_batch (int | None | Unset): Also measure each trial's latency at this batch size (per image, the median;
            the trial's latency_batch_ms). Only recorded: constraints, targets and Pareto ranks use latency_ms (batch 1).
        latency_target_ms (float | None | Unset): With mode accuracy: a soft latency target (MnasNet's reward). The
            search, pruning, the leaderboard's order and the final model's trial then maximise metric × (latency_ms /
            latency_target_ms) ** -0.07 instead of the metric: twice the target costs about 5 % of the metric, half of it
            gains about 5 %. Not allowed with mode pareto (which minimises latency itself).
        metric (ObjectiveMetric | Unset): What the search maximises on the validation split: accuracy, or balanced
            accuracy (mean per-class recall; for imbalanced data where every class matters). Pruning always compares trials
            on balanced accuracy, which ranks early epochs better. Default: ObjectiveMetric.ACCURACY.
        minimize (list[ObjectiveMinimizeType0Item] | None | Unset): With mode pareto: what to minimise next to the
            metric — latency_ms (CPU latency per image, batch 1) and/or params; default ["latency_ms"]. Not allowed with
            mode accuracy.
        mode (ObjectiveMode | Unset): accuracy: maximise the metric alone (constraints are hard limits). pareto:
            maximise the metric and minimise each of `minimize` at once; strategies, pruning, the leaderboard's order (by
            Pareto layer, then the metric) and the final model's trial (the best metric of the first layer) follow the
            Pareto front. Constraints apply in both modes. Default: ObjectiveMode.ACCURACY.
    """

    constraints: Constraints | Unset = UNSET
    latency_batch: int | None | Unset = UNSET
    latency_target_ms: float | None | Unset = UNSET
    metric: ObjectiveMetric | Unset = ObjectiveMetric.ACCURACY
    minimize: list[ObjectiveMinimizeType0Item] | None | Unset = UNSET
    mode: ObjectiveMode | Unset = ObjectiveMode.ACCURACY

    def to_dict(self) -> dict[str, Any]:
        constraints: dict[str, Any] | Unset = UNSET
        if not isinstance(self.constraints, Unset):
            constraints = self.constraints.to_dict()

        latency_batch: int | None | Unset
        if isinstance(self.latency_batch, Unset):
            latency_batch = UNSET
        else:
            latency_batch = self.latency_batch

        latency_target_ms: float | None | Unset
        if isinstance(self.latency_target_ms, Unset):
            latency_target_ms = UNSET
        else:
            latency_target_ms = self.latency_target_ms

        metric: str | Unset = UNSET
        if not isinstance(self.metric, Unset):
            metric = self.metric.value

        minimize: list[str] | None | Unset
        if isinstance(self.minimize, Unset):
            minimize = UNSET
        elif isinstance(self.minimize, list):
            minimize = []
            for minimize_type_0_item_data in self.minimize:
                minimize_type_0_item = minimize_type_0_item_data.value
                minimize.append(minimize_type_0_item)

        else:
            minimize = self.minimize

        mode: str | Unset = UNSET
        if not isinstance(self.mode, Unset):
            mode = self.mode.value

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if constraints is not UNSET:
            field_dict["constraints"] = constraints
        if latency_batch is not UNSET:
            field_dict["latency_batch"] = latency_batch
        if latency_target_ms is not UNSET:
            field_dict["latency_target_ms"] = latency_target_ms
        if metric is not UNSET:
            field_dict["metric"] = metric
        if minimize is not UNSET:
            field_dict["minimize"] = minimize
        if mode is not UNSET:
            field_dict["mode"] = mode

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.constraints import Constraints

        d = dict(src_dict)
        _constraints = d.pop("constraints", UNSET)
        constraints: Constraints | Unset
        if isinstance(_constraints, Unset):
            constraints = UNSET
        else:
            constraints = Constraints.from_dict(_constraints)

        def _parse_latency_batch(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        latency_batch = _parse_latency_batch(d.pop("latency_batch", UNSET))

        def _parse_latency_target_ms(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        latency_target_ms = _parse_latency_target_ms(d.pop("latency_target_ms", UNSET))

        _metric = d.pop("metric", UNSET)
        metric: ObjectiveMetric | Unset
        if isinstance(_metric, Unset):
            metric = UNSET
        else:
            metric = ObjectiveMetric(_metric)

        def _parse_minimize(
            data: object,
        ) -> list[ObjectiveMinimizeType0Item] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                minimize_type_0 = []
                _minimize_type_0 = data
                for minimize_type_0_item_data in _minimize_type_0:
                    minimize_type_0_item = ObjectiveMinimizeType0Item(
                        minimize_type_0_item_data
                    )

                    minimize_type_0.append(minimize_type_0_item)

                return minimize_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[ObjectiveMinimizeType0Item] | None | Unset, data)

        minimize = _parse_minimize(d.pop("minimize", UNSET))

        _mode = d.pop("mode", UNSET)
        mode: ObjectiveMode | Unset
        if isinstance(_mode, Unset):
            mode = UNSET
        else:
            mode = ObjectiveMode(_mode)

        objective = cls(
            constraints=constraints,
            latency_batch=latency_batch,
            latency_target_ms=latency_target_ms,
            metric=metric,
            minimize=minimize,
            mode=mode,
        )

        return objective
