from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.predict_body import PredictBody
from ...models.prediction_read import PredictionRead
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    model_id: str,
    *,
    body: PredictBody,
    top_k: int | Unset = 5,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    params: dict[str, Any] = {}

    params["top_k"] = top_k

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/models/{model_id}/predict".format(
            model_id=quote(str(model_id), safe=""),
        ),
        "params": params,
    }

    _kwargs["files"] = body.to_multipart()

    headers["Content-Type"] = "multipart/form-data; boundary=+++"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> PredictionRead | Problem | None:
    if response.status_code == 200:
        response_200 = PredictionRead.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

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

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())

        return response_415

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
) -> Response[PredictionRead | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    model_id: str,
    *,
    client: AuthenticatedClient | Client,
    body: PredictBody,
    top_k: int | Unset = 5,
) -> Response[PredictionRead | Problem]:
    """Classify images with a ready model: the top classes of each, from its ONNX file

    Args:
        model_id (str):
        top_k (int | Unset): Classes listed per image, most probable first (capped at the model's
            class count). Default: 5.
        body (PredictBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[PredictionRead | Problem]
    """

    kwargs = _get_kwargs(
        model_id=model_id,
        body=body,
        top_k=top_k,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    model_id: str,
    *,
    client: AuthenticatedClient | Client,
    body: PredictBody,
    top_k: int | Unset = 5,
) -> PredictionRead | Problem | None:
    """Classify images with a ready model: the top classes of each, from its ONNX file

    Args:
        model_id (str):
        top_k (int | Unset): Classes listed per image, most probable first (capped at the model's
            class count). Default: 5.
        body (PredictBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        PredictionRead | Problem
    """

    return sync_detailed(
        model_id=model_id,
        client=client,
        body=body,
        top_k=top_k,
    ).parsed


async def asyncio_detailed(
    model_id: str,
    *,
    client: AuthenticatedClient | Client,
    body: PredictBody,
    top_k: int | Unset = 5,
) -> Response[PredictionRead | Problem]:
    """Classify images with a ready model: the top classes of each, from its ONNX file

    Args:
        model_id (str):
        top_k (int | Unset): Classes listed per image, most probable first (capped at the model's
            class count). Default: 5.
        body (PredictBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[PredictionRead | Problem]
    """

    kwargs = _get_kwargs(
        model_id=model_id,
        body=body,
        top_k=top_k,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    model_id: str,
    *,
    client: AuthenticatedClient | Client,
    body: PredictBody,
    top_k: int | Unset = 5,
) -> PredictionRead | Problem | None:
    """Classify images with a ready model: the top classes of each, from its ONNX file

    Args:
        model_id (str):
        top_k (int | Unset): Classes listed per image, most probable first (capped at the model's
            class count). Default: 5.
        body (PredictBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        PredictionRead | Problem
    """

    return (
        await asyncio_detailed(
            model_id=model_id,
            client=client,
            body=body,
            top_k=top_k,
        )
    ).parsed
