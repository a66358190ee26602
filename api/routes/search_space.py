"""``GET /v1/search-space``: the default block search space and how a request may override it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CurrentProject
from api.schemas.common import SearchSpaceRead, error_responses

router = APIRouter(prefix="/v1/search-space", tags=["search space"],
                   responses=error_responses(429))


@router.get("", response_model=SearchSpaceRead, operation_id="get_search_space",
            summary="The default search space as JSON, with the override grammar", responses=error_responses(401))
def get_search_space(project: CurrentProject) -> dict[str, Any]:
    from nas_core.space import default_search_space

    return default_search_space().to_dict()
