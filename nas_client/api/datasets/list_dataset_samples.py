from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.dataset_sample_list import DatasetSampleList
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    dataset_id: str,
    *,
    per_class: int | Unset = 4,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["per_class"] = per_class

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/datasets/{dataset_id}/samples".format(
            dataset_id=quote(str(dataset_id), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> DatasetSampleList | Problem | None:
    if response.status_code == 200:
        response_200 = DatasetSampleList.from_dict(response.json())

        return response_200

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

    if response.status_code == 409:
        response_409 = Problem.from_dict(response.json())

        return response_409

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[DatasetSampleList | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    dataset_id: str,
    *,
    client: AuthenticatedClient | Client,
    per_class: int | Unset = 4,
) -> Response[DatasetSampleList | Problem]:
    """Thumbnails of a ready dataset: the first train-split images of each class, as base64 PNGs

    Args:
        dataset_id (str):
        per_class (int | Unset): Train-split images per class. Default: 4.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DatasetSampleList | Problem]
    """

    kwargs = _get_kwargs(
        dataset_id=dataset_id,
        per_class=per_class,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    dataset_id: str,
    *,
    client: AuthenticatedClient | Client,
    per_class: int | Unset = 4,
) -> DatasetSampleList | Problem | None:
    """Thumbnails of a ready dataset: the first train-split images of each class, as base64 PNGs

    Args:
        dataset_id (str):
        per_class (int | Unset): Train-split images per class. Default: 4.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DatasetSampleList | Problem
    """

    return sync_detailed(
        dataset_id=dataset_id,
        client=client,
        per_class=per_class,
    ).parsed


async def asyncio_detailed(
    dataset_id: str,
    *,
    client: AuthenticatedClient | Client,
    per_class: int | Unset = 4,
) -> Response[DatasetSampleList | Problem]:
    """Thumbnails of a ready dataset: the first train-split images of each class, as base64 PNGs

    Args:
        dataset_id (str):
        per_class (int | Unset): Train-split images per class. Default: 4.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DatasetSampleList | Problem]
    """

    kwargs = _get_kwargs(
        dataset_id=dataset_id,
        per_class=per_class,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    dataset_id: str,
    *,
    client: AuthenticatedClient | Client,
    per_class: int | Unset = 4,
) -> DatasetSampleList | Problem | None:
    """Thumbnails of a ready dataset: the first train-split images of each class, as base64 PNGs

    Args:
        dataset_id (str):
        per_class (int | Unset): Train-split images per class. Default: 4.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DatasetSampleList | Problem
    """

    return (
        await asyncio_detailed(
            dataset_id=dataset_id,
            client=client,
            per_class=per_class,
        )
    ).parsed
