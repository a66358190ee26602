from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.trial_read import TrialRead
from ...types import UNSET, Response, Unset


def _get_kwargs(
    experiment_id: str,
    number: int,
    *,
    idempotency_key: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(idempotency_key, Unset):
        headers["Idempotency-Key"] = idempotency_key

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/experiments/{experiment_id}/trials/{number}/stop".format(
            experiment_id=quote(str(experiment_id), safe=""),
            number=quote(str(number), safe=""),
        ),
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Problem | TrialRead | None:
    if response.status_code == 202:
        response_202 = TrialRead.from_dict(response.json())

        return response_202

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
) -> Response[Problem | TrialRead]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    experiment_id: str,
    number: int,
    *,
    client: AuthenticatedClient | Client,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[Problem | TrialRead]:
    """Stop one trial; the search goes on

     A running trial stops at its next batch and ends stopped with the epochs it trained; a pending one
    ends stopped without starting. Either way the scheduler fills its slot. A stopped trial counts
    against max_trials like a pruned one and is not ranked. 409 when the trial or the experiment has
    already ended.

    Args:
        experiment_id (str):
        number (int):
        idempotency_key (None | str | Unset): Send the same key to replay this request's first
            successful answer instead of running it again (24 h); reusing a key with another body is a
            422.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | TrialRead]
    """

    kwargs = _get_kwargs(
        experiment_id=experiment_id,
        number=number,
        idempotency_key=idempotency_key,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    experiment_id: str,
    number: int,
    *,
    client: AuthenticatedClient | Client,
    idempotency_key: None | str | Unset = UNSET,
) -> Problem | TrialRead | None:
    """Stop one trial; the search goes on

     A running trial stops at its next batch and ends stopped with the epochs it trained; a pending one
    ends stopped without starting. Either way the scheduler fills its slot. A stopped trial counts
    against max_trials like a pruned one and is not ranked. 409 when the trial or the experiment has
    already ended.

    Args:
        experiment_id (str):
        number (int):
        idempotency_key (None | str | Unset): Send the same key to replay this request's first
            successful answer instead of running it again (24 h); reusing a key with another body is a
            422.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | TrialRead
    """

    return sync_detailed(
        experiment_id=experiment_id,
        number=number,
        client=client,
        idempotency_key=idempotency_key,
    ).parsed


async def asyncio_detailed(
    experiment_id: str,
    number: int,
    *,
    client: AuthenticatedClient | Client,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[Problem | TrialRead]:
    """Stop one trial; the search goes on

     A running trial stops at its next batch and ends stopped with the epochs it trained; a pending one
    ends stopped without starting. Either way the scheduler fills its slot. A stopped trial counts
    against max_trials like a pruned one and is not ranked. 409 when the trial or the experiment has
    already ended.

    Args:
        experiment_id (str):
        number (int):
        idempotency_key (None | str | Unset): Send the same key to replay this request's first
            successful answer instead of running it again (24 h); reusing a key with another body is a
            422.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | TrialRead]
    """

    kwargs = _get_kwargs(
        experiment_id=experiment_id,
        number=number,
        idempotency_key=idempotency_key,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    experiment_id: str,
    number: int,
    *,
    client: AuthenticatedClient | Client,
    idempotency_key: None | str | Unset = UNSET,
) -> Problem | TrialRead | None:
    """Stop one trial; the search goes on

     A running trial stops at its next batch and ends stopped with the epochs it trained; a pending one
    ends stopped without starting. Either way the scheduler fills its slot. A stopped trial counts
    against max_trials like a pruned one and is not ranked. 409 when the trial or the experiment has
    already ended.

    Args:
        experiment_id (str):
        number (int):
        idempotency_key (None | str | Unset): Send the same key to replay this request's first
            successful answer instead of running it again (24 h); reusing a key with another body is a
            422.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | TrialRead
    """

    return (
        await asyncio_detailed(
            experiment_id=experiment_id,
            number=number,
            client=client,
            idempotency_key=idempotency_key,
        )
    ).parsed
