from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.experiment_read import ExperimentRead
from ...models.experiment_resume import ExperimentResume
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    experiment_id: str,
    *,
    body: ExperimentResume | None | Unset = UNSET,
    idempotency_key: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(idempotency_key, Unset):
        headers["Idempotency-Key"] = idempotency_key

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/experiments/{experiment_id}/resume".format(
            experiment_id=quote(str(experiment_id), safe=""),
        ),
    }

    if isinstance(body, ExperimentResume):
        _kwargs["json"] = body.to_dict()
    else:
        _kwargs["json"] = body

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ExperimentRead | Problem | None:
    if response.status_code == 202:
        response_202 = ExperimentRead.from_dict(response.json())

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

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())

        return response_413

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
) -> Response[ExperimentRead | Problem]:
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
    body: ExperimentResume | None | Unset = UNSET,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[ExperimentRead | Problem]:
    """Continue a canceled or failed search with the budget left, or extend a succeeded one with a larger
    budget

     Budgets are totals: the trials already run and the minutes already spent count against the new
    max_trials and max_minutes. The strategy continues from the full trial history and trial numbers
    continue. A succeeded search resumes only with a larger max_trials or max_minutes (409 budget-not-
    raised otherwise); when it ends again, a new final model is built if auto_model is on.

    Args:
        experiment_id (str):
        idempotency_key (None | str | Unset): Send the same key to replay this request's first
            successful answer instead of running it again (24 h); reusing a key with another body is a
            422.
        body (ExperimentResume | None | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ExperimentRead | Problem]
    """

    kwargs = _get_kwargs(
        experiment_id=experiment_id,
        body=body,
        idempotency_key=idempotency_key,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    experiment_id: str,
    *,
    client: AuthenticatedClient | Client,
    body: ExperimentResume | None | Unset = UNSET,
    idempotency_key: None | str | Unset = UNSET,
) -> ExperimentRead | Problem | None:
    """Continue a canceled or failed search with the budget left, or extend a succeeded one with a larger
    budget

     Budgets are totals: the trials already run and the minutes already spent count against the new
    max_trials and max_minutes. The strategy continues from the full trial history and trial numbers
    continue. A succeeded search resumes only with a larger max_trials or max_minutes (409 budget-not-
    raised otherwise); when it ends again, a new final model is built if auto_model is on.

    Args:
        experiment_id (str):
        idempotency_key (None | str | Unset): Send the same key to replay this request's first
            successful answer instead of running it again (24 h); reusing a key with another body is a
            422.
        body (ExperimentResume | None | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ExperimentRead | Problem
    """

    return sync_detailed(
        experiment_id=experiment_id,
        client=client,
        body=body,
        idempotency_key=idempotency_key,
    ).parsed


async def asyncio_detailed(
    experiment_id: str,
    *,
    client: AuthenticatedClient | Client,
    body: ExperimentResume | None | Unset = UNSET,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[ExperimentRead | Problem]:
    """Continue a canceled or failed search with the budget left, or extend a succeeded one with a larger
    budget

     Budgets are totals: the trials already run and the minutes already spent count against the new
    max_trials and max_minutes. The strategy continues from the full trial history and trial numbers
    continue. A succeeded search resumes only with a larger max_trials or max_minutes (409 budget-not-
    raised otherwise); when it ends again, a new final model is built if auto_model is on.

    Args:
        experiment_id (str):
        idempotency_key (None | str | Unset): Send the same key to replay this request's first
            successful answer instead of running it again (24 h); reusing a key with another body is a
            422.
        body (ExperimentResume | None | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ExperimentRead | Problem]
    """

    kwargs = _get_kwargs(
        experiment_id=experiment_id,
        body=body,
        idempotency_key=idempotency_key,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    experiment_id: str,
    *,
    client: AuthenticatedClient | Client,
    body: ExperimentResume | None | Unset = UNSET,
    idempotency_key: None | str | Unset = UNSET,
) -> ExperimentRead | Problem | None:
    """Continue a canceled or failed search with the budget left, or extend a succeeded one with a larger
    budget

     Budgets are totals: the trials already run and the minutes already spent count against the new
    max_trials and max_minutes. The strategy continues from the full trial history and trial numbers
    continue. A succeeded search resumes only with a larger max_trials or max_minutes (409 budget-not-
    raised otherwise); when it ends again, a new final model is built if auto_model is on.

    Args:
        experiment_id (str):
        idempotency_key (None | str | Unset): Send the same key to replay this request's first
            successful answer instead of running it again (24 h); reusing a key with another body is a
            422.
        body (ExperimentResume | None | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ExperimentRead | Problem
    """

    return (
        await asyncio_detailed(
            experiment_id=experiment_id,
            client=client,
            body=body,
            idempotency_key=idempotency_key,
        )
    ).parsed
