from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.dataset_read_status import DatasetReadStatus

if TYPE_CHECKING:
    from ..models.class_count import ClassCount
    from ..models.dataset_read_errors_item import DatasetReadErrorsItem
    from ..models.image_shape import ImageShape
    from ..models.split_sizes import SplitSizes


T = TypeVar("T", bound="DatasetRead")


@_attrs_define
class DatasetRead:
    """
    Attributes:
        classes (list[ClassCount] | None):
        created_at (datetime.datetime):
        detail (None | str):
        errors (list[DatasetReadErrorsItem]):
        id (str):
        image (ImageShape | None):
        name (str):
        num_images (int | None):
        sha256 (str):
        size_bytes (int):
        splits (None | SplitSizes):
        status (DatasetReadStatus):
        updated_at (datetime.datetime):
    """

    classes: list[ClassCount] | None
    created_at: datetime.datetime
    detail: None | str
    errors: list[DatasetReadErrorsItem]
    id: str
    image: ImageShape | None
    name: str
    num_images: int | None
    sha256: str
    size_bytes: int
    splits: None | SplitSizes
    status: DatasetReadStatus
    updated_at: datetime.datetime
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.image_shape import ImageShape
        from ..models.split_sizes import SplitSizes

        classes: list[dict[str, Any]] | None
        if isinstance(self.classes, list):
            classes = []
            for classes_type_0_item_data in self.classes:
                classes_type_0_item = classes_type_0_item_data.to_dict()
                classes.append(classes_type_0_item)

        else:
            classes = self.classes

        created_at = self.created_at.isoformat()

        detail: None | str
        detail = self.detail

        errors = []
        for errors_item_data in self.errors:
            errors_item = errors_item_data.to_dict()
            errors.append(errors_item)

        id = self.id

        image: dict[str, Any] | None
        if isinstance(self.image, ImageShape):
            image = self.image.to_dict()
        else:
            image = self.image

        name = self.name

        num_images: int | None
        num_images = self.num_images

        sha256 = self.sha256

        size_bytes = self.size_bytes

        splits: dict[str, Any] | None
        if isinstance(self.splits, SplitSizes):
            splits = self.splits.to_dict()
        else:
            splits = self.splits

        status = self.status.value

        updated_at = self.updated_at.isoformat()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "classes": classes,
                "created_at": created_at,
                "detail": detail,
                "errors": errors,
                "id": id,
                "image": image,
                "name": name,
                "num_images": num_images,
                "sha256": sha256,
                "size_bytes": size_bytes,
                "splits": splits,
                "status": status,
                "updated_at": updated_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.class_count import ClassCount
        from ..models.dataset_read_errors_item import DatasetReadErrorsItem
        from ..models.image_shape import ImageShape
        from ..models.split_sizes import SplitSizes

        d = dict(src_dict)

        def _parse_classes(data: object) -> list[ClassCount] | None:
            if data is None:
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                classes_type_0 = []
                _classes_type_0 = data
                for classes_type_0_item_data in _classes_type_0:
                    classes_type_0_item = ClassCount.from_dict(classes_type_0_item_data)

                    classes_type_0.append(classes_type_0_item)

                return classes_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[ClassCount] | None, data)

        classes = _parse_classes(d.pop("classes"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        def _parse_detail(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        detail = _parse_detail(d.pop("detail"))

        errors = []
        _errors = d.pop("errors")
        for errors_item_data in _errors:
            errors_item = DatasetReadErrorsItem.from_dict(errors_item_data)

            errors.append(errors_item)

        id = d.pop("id")

        def _parse_image(data: object) -> ImageShape | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                image_type_0 = ImageShape.from_dict(data)

                return image_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ImageShape | None, data)

        image = _parse_image(d.pop("image"))

        name = d.pop("name")

        def _parse_num_images(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        num_images = _parse_num_images(d.pop("num_images"))

        sha256 = d.pop("sha256")

        size_bytes = d.pop("size_bytes")

        def _parse_splits(data: object) -> None | SplitSizes:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                splits_type_0 = SplitSizes.from_dict(data)

                return splits_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SplitSizes, data)

        splits = _parse_splits(d.pop("splits"))

        status = DatasetReadStatus(d.pop("status"))

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        dataset_read = cls(
            classes=classes,
            created_at=created_at,
            detail=detail,
            errors=errors,
            id=id,
            image=image,
            name=name,
            num_images=num_images,
            sha256=sha256,
            size_bytes=size_bytes,
            splits=splits,
            status=status,
            updated_at=updated_at,
        )

        dataset_read.additional_properties = d
        return dataset_read

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
