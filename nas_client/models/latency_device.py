from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.latency_device_identity import LatencyDeviceIdentity


T = TypeVar("T", bound="LatencyDevice")


@_attrs_define
class LatencyDevice:
    """What the experiment's trials' latencies were measured on: the device of the first trial that measured.

    Attributes:
        cpu_model (str): The CPU's model name (/proc/cpuinfo on Linux).
        runtime (str): The runtime and execution provider that ran the graph.
        threads (int): onnxruntime intra-op threads of the measurement (NAS_LATENCY_THREADS).
        logical_cpus (int | None | Unset): Logical CPUs of the machine.
        mixed (bool | Unset): Whether some trials were measured on another CPU model, thread count or runtime version
            (listed in other_devices): their latencies are not comparable. Default: False.
        onnxruntime (None | str | Unset): onnxruntime's version.
        other_devices (list[LatencyDeviceIdentity] | Unset): The other devices trials were measured on, in the order
            first seen (at most 8 are named).
    """

    cpu_model: str
    runtime: str
    threads: int
    logical_cpus: int | None | Unset = UNSET
    mixed: bool | Unset = False
    onnxruntime: None | str | Unset = UNSET
    other_devices: list[LatencyDeviceIdentity] | Unset = UNSET
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

        mixed = self.mixed

        onnxruntime: None | str | Unset
        if isinstance(self.onnxruntime, Unset):
            onnxruntime = UNSET
        else:
            onnxruntime = self.onnxruntime

        other_devices: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.other_devices, Unset):
            other_devices = []
            for other_devices_item_data in self.other_devices:
                other_devices_item = other_devices_item_data.to_dict()
                other_devices.append(other_devices_item)

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
        if mixed is not UNSET:
            field_dict["mixed"] = mixed
        if onnxruntime is not UNSET:
            field_dict["onnxruntime"] = onnxruntime
        if other_devices is not UNSET:
            field_dict["other_devices"] = other_devices

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.latency_device_identity import LatencyDeviceIdentity

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

        mixed = d.pop("mixed", UNSET)

        def _parse_onnxruntime(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        onnxruntime = _parse_onnxruntime(d.pop("onnxruntime", UNSET))

        _other_devices = d.pop("other_devices", UNSET)
        other_devices: list[LatencyDeviceIdentity] | Unset = UNSET
        if _other_devices is not UNSET:
            other_devices = []
            for other_devices_item_data in _other_devices:
                other_devices_item = LatencyDeviceIdentity.from_dict(
                    other_devices_item_data
                )

                other_devices.append(other_devices_item)

        latency_device = cls(
            cpu_model=cpu_model,
            runtime=runtime,
            threads=threads,
            logical_cpus=logical_cpus,
            mixed=mixed,
            onnxruntime=onnxruntime,
            other_devices=other_devices,
        )

        latency_device.additional_properties = d
        return latency_device

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
