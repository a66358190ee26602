from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.list_trials_status_type_0 import ListTrialsStatusType0
from ...models.problem import Problem
from ...models.trial_list import TrialList
from ...types import UNSET, Response, Unset


def _get_kwargs(
    experiment_id: str,
    *,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
    status: ListTrialsStatusType0 | None | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["limit"] = limit

    params["offset"] = offset

    json_status: None | str | Unset
    if isinstance(status, Unset):
        json_status = UNSET
    elif isinstance(status, ListTrialsStatusType0):
        json_status = status.value
    else:
        json_status = status
    params["status"] = json_status

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/experiments/{experiment_id}/trials".format(
            experiment_id=quote(str(experiment_id), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Problem | TrialList | None:
    if response.status_code == 200:
        response_200 = TrialList.from_dict(response.json())

        return response_200

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

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
) -> Response[Problem | TrialList]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    experiment_id: str,
    *,
    client: AuthenticatedClient | Client,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
    status: ListTrialsStatusType0 | None | Unset = UNSET,
) -> Response[Problem | TrialList]:
    """Trials with per-epoch curves

    Args:
        experiment_id (str):
        limit (int | Unset): Items per page. Default: 100.
        offset (int | Unset): Items to skip. Default: 0.
        status (ListTrialsStatusType0 | None | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | TrialList]
    """

    kwargs = _get_kwargs(
        experiment_id=experiment_id,
        limit=limit,
        offset=offset,
        status=status,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    experiment_id: str,
    *,
    client: AuthenticatedClient | Client,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
    status: ListTrialsStatusType0 | None | Unset = UNSET,
) -> Problem | TrialList | None:
    """Trials with per-epoch curves

    Args:
        experiment_id (str):
        limit (int | Unset): Items per page. Default: 100.
        offset (int | Unset): Items to skip. Default: 0.
        status (ListTrialsStatusType0 | None | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | TrialList
    """

    return sync_detailed(
        experiment_id=experiment_id,
        client=client,
        limit=limit,
        offset=offset,
        status=status,
    ).parsed


async def asyncio_detailed(
    experiment_id: str,
    *,
    client: AuthenticatedClient | Client,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
    status: ListTrialsStatusType0 | None | Unset = UNSET,
) -> Response[Problem | TrialList]:
    """Trials with per-epoch curves

    Args:
        experiment_id (str):
        limit (int | Unset): Items per page. Default: 100.
        offset (int | Unset): Items to skip. Default: 0.
        status (ListTrialsStatusType0 | None | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | TrialList]
    """

    kwargs = _get_kwargs(
        experiment_id=experiment_id,
        limit=limit,
        offset=offset,
        status=status,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    experiment_id: str,
    *,
    client: AuthenticatedClient | Client,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
    status: ListTrialsStatusType0 | None | Unset = UNSET,
) -> Problem | TrialList | None:
    """Trials with per-epoch curves

    Args:
        experiment_id (str):
        limit (int | Unset): Items per page. Default: 100.
        offset (int | Unset): Items to skip. Default: 0.
        status (ListTrialsStatusType0 | None | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | TrialList
    """

    return (
        await asyncio_detailed(
            experiment_id=experiment_id,
            client=client,
            limit=limit,
            offset=offset,
            status=status,
        )
    ).parsed
