"""Authorization sweep: every /v1 route of the app, called with another project's key or with none."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute

from api.main import create_app
from tests.service.helpers import all_trials, experiment_body, ready_dataset


def api_routes(routes, prefix: str = ""):
    """Every APIRoute of the app, also those inside included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):  # FastAPI's wrapper of an included router
            yield from api_routes(route.original_router.routes, prefix + route.include_context.prefix)
        elif hasattr(route, "routes"):
            yield from api_routes(route.routes, prefix + getattr(route, "path", ""))


def v1_routes(service) -> list[tuple[str, str]]:
    app = create_app(service.settings)
    return sorted({(method, path) for path, route in api_routes(app.routes) if path.startswith("/v1")
                   for method in route.methods})


def test_every_route_hides_another_projects_resources(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    body = experiment_body(dataset["id"], strategy="random", budget={"max_trials": 1, "epochs_per_trial": 1})
    experiment = app_client.post("/v1/experiments", json=body).json()
    app_service.drain()  # the search, to its end
    assert app_client.get(f"/v1/experiments/{experiment['id']}").json()["status"] == "succeeded"
    trial = all_trials(app_client, experiment["id"])[0]
    model = app_client.post(f"/v1/experiments/{experiment['id']}/models", json={"epochs": 1}).json()
    ids = {"dataset_id": dataset["id"], "experiment_id": experiment["id"], "trial_id": trial["id"],
           "model_id": model["id"], "format": "onnx", "number": str(trial["number"])}
    owned = set(ids.values()) - {"onnx", str(trial["number"])}

    routes = v1_routes(app_service)
    assert len(routes) >= 15, routes
    with app_service.client(app_service.new_key().key) as other, app_service.client() as anonymous:
        for method, path in routes:
            url = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
            assert anonymous.request(method, url).status_code == 401, (method, path)
            response = other.request(method, url, json={} if method == "POST" else None)
            if "{" in path:
                assert response.status_code == 404, (method, path, response.text)
                assert response.headers["content-type"].startswith("application/problem+json")
            elif method == "GET":
                assert response.status_code == 200, (method, path)
                assert not owned & set(re.findall(r"[0-9a-f]{32}", response.text)), (method, path)
        # Nor may another project start a search on this project's dataset.
        attempt = other.post("/v1/experiments", json=experiment_body(dataset["id"]))
        assert attempt.status_code == 404
    # Nothing changed for the owner: the sweep's POSTs and DELETEs did nothing.
    assert app_client.get(f"/v1/datasets/{dataset['id']}").json()["status"] == "ready"
    assert app_client.get(f"/v1/experiments/{experiment['id']}").json()["status"] == "succeeded"
    assert app_client.get(f"/v1/models/{model['id']}").status_code == 200


def test_fields_the_user_must_not_set_are_rejected(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    for field, value in (("project_id", "0" * 32), ("status", "succeeded"), ("trials_created", 99),
                         ("progress", {"completed": 5}), ("id", "0" * 32)):
        response = app_client.post("/v1/experiments", json={**experiment_body(dataset["id"]), field: value})
        assert response.status_code == 422, (field, response.text)
    assert app_client.get("/v1/experiments").json()["total"] == 0
