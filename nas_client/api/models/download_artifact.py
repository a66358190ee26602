from http import HTTPStatus
from io import BytesIO
from typing import Any, cast
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...types import UNSET, File, Response, Unset


def _get_kwargs(
    model_id: str,
    format_: str,
    *,
    redirect: bool | Unset = True,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["redirect"] = redirect

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/models/{model_id}/artifacts/{format_}".format(
            model_id=quote(str(model_id), safe=""),
            format_=quote(str(format_), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Any | File | Problem | None:
    if response.status_code == 200:
        response_200 = File(payload=BytesIO(response.content))

        return response_200

    if response.status_code == 307:
        response_307 = cast(Any, None)
        return response_307

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
) -> Response[Any | File | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    model_id: str,
    format_: str,
    *,
    client: AuthenticatedClient | Client,
    redirect: bool | Unset = True,
) -> Response[Any | File | Problem]:
    """Download an artifact (onnx, pt2, preprocessing, card) of a ready model

    Args:
        model_id (str):
        format_ (str):
        redirect (bool | Unset): On S3 storage, answer 307 to a presigned URL (default) instead of
            streaming the file through the API. Default: True.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | File | Problem]
    """

    kwargs = _get_kwargs(
        model_id=model_id,
        format_=format_,
        redirect=redirect,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    model_id: str,
    format_: str,
    *,
    client: AuthenticatedClient | Client,
    redirect: bool | Unset = True,
) -> Any | File | Problem | None:
    """Download an artifact (onnx, pt2, preprocessing, card) of a ready model

    Args:
        model_id (str):
        format_ (str):
        redirect (bool | Unset): On S3 storage, answer 307 to a presigned URL (default) instead of
            streaming the file through the API. Default: True.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | File | Problem
    """

    return sync_detailed(
        model_id=model_id,
        format_=format_,
        client=client,
        redirect=redirect,
    ).parsed


async def asyncio_detailed(
    model_id: str,
    format_: str,
    *,
    client: AuthenticatedClient | Client,
    redirect: bool | Unset = True,
) -> Response[Any | File | Problem]:
    """Download an artifact (onnx, pt2, preprocessing, card) of a ready model

    Args:
        model_id (str):
        format_ (str):
        redirect (bool | Unset): On S3 storage, answer 307 to a presigned URL (default) instead of
            streaming the file through the API. Default: True.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | File | Problem]
    """

    kwargs = _get_kwargs(
        model_id=model_id,
        format_=format_,
        redirect=redirect,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    model_id: str,
    format_: str,
    *,
    client: AuthenticatedClient | Client,
    redirect: bool | Unset = True,
) -> Any | File | Problem | None:
    """Download an artifact (onnx, pt2, preprocessing, card) of a ready model

    Args:
        model_id (str):
        format_ (str):
        redirect (bool | Unset): On S3 storage, answer 307 to a presigned URL (default) instead of
            streaming the file through the API. Default: True.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | File | Problem
    """

    return (
        await asyncio_detailed(
            model_id=model_id,
            format_=format_,
            client=client,
            redirect=redirect,
        )
    ).parsed
