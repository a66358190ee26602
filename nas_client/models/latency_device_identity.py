from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="LatencyDeviceIdentity")


@_attrs_define
class LatencyDeviceIdentity:
    """
    Attributes:
        cpu_model (str): The CPU's model name (/proc/cpuinfo on Linux).
        runtime (str): The runtime and execution provider that ran the graph.
        threads (int): onnxruntime intra-op threads of the measurement (NAS_LATENCY_THREADS).
        logical_cpus (int | None | Unset): Logical CPUs of the machine.
        onnxruntime (None | str | Unset): onnxruntime's version.
    """

    cpu_model: str
    runtime: str
    threads: int
    logical_cpus: int | None | Unset = UNSET
    onnxruntime: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        cpu_model = self.cpu_model

        runtime = self.runtime

        threads = self.threads

        logical_cpus: int | None | Unset
        if isinstance(self.logical_cpus, Unset):
            logical_cpus = UNSET
        else:
            logical_cpus = self.logical_cpus

        onnxruntime: None | str | Unset
        if isinstance(self.onnxruntime, Unset):
            onnxruntime = UNSET
        else:
            onnxruntime = self.onnxruntime

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "cpu_model": cpu_model,
                "runtime": runtime,
                "threads": threads,
            }
        )
        if logical_cpus is not UNSET:
            field_dict["logical_cpus"] = logical_cpus
        if onnxruntime is not UNSET:
            field_dict["onnxruntime"] = onnxruntime

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        cpu_model = d.pop("cpu_model")

        runtime = d.pop("runtime")

        threads = d.pop("threads")

        def _parse_logical_cpus(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        logical_cpus = _parse_logical_cpus(d.pop("logical_cpus", UNSET))

        def _parse_onnxruntime(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        onnxruntime = _parse_onnxruntime(d.pop("onnxruntime", UNSET))

        latency_device_identity = cls(
            cpu_model=cpu_model,
            runtime=runtime,
            threads=threads,
            logical_cpus=logical_cpus,
            onnxruntime=onnxruntime,
        )

        latency_device_identity.additional_properties = d
        return latency_device_identity

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
