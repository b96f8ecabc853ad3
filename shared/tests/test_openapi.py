"""The OpenAPI generator and the docs routes, on a small made-up API: no database, no broker."""

from typing import Annotated

import pytest
from aiohttp import web
from openapi_spec_validator import validate
from pydantic import BaseModel, ConfigDict, Field

from shared.openapi import COMMON_OPERATIONS, COMMON_TAGS, LOCATION, Operation, Problem, add_docs_routes, build_spec
from shared.problems import Conflict, problem_type
from shared.testing.docs import documented, routed, schema_validator


class ThingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1)]


class Thing(BaseModel):
    id: int
    name: str


class OwnerThingQuery(BaseModel):
    kind: str = "any"


class ThingQuery(OwnerThingQuery):
    owner_id: Annotated[int, Field(ge=1)] | None = None


class NameTaken(Conflict):
    """Another thing has this name."""

    type = problem_type("name-taken")


OPERATIONS = [
    Operation(
        "POST",
        "/things",
        "create_thing",
        "Create a thing",
        "things",
        {201: (Thing(id=1, name="a"), "Created."), 409: ((NameTaken("The name a is taken."),), "Taken.")},
        "Makes a thing.",
        request=ThingIn(name="a"),
        response_headers={201: (LOCATION,)},
    ),
    Operation("GET", "/things", "list_things", "List things", "things", {200: (Thing, "A thing.")}, query=ThingQuery),
    Operation(
        "GET",
        "/owners/{id}/things",
        "list_owner_things",
        "An owner's things",
        "things",
        {200: (Thing, "A thing.")},
        query=OwnerThingQuery,
        path_params=("id",),
    ),
    Operation(
        "DELETE",
        "/things/{id}",
        "delete_thing",
        "Delete",
        "things",
        {204: (None, "Deleted."), 404: (Problem, "No such thing.")},
        path_params=("id",),
    ),
]


TAGS = {"things": "Things.", **COMMON_TAGS}
SERVERS = [{"url": "http://localhost:1"}]


def spec() -> dict:
    return build_spec("Things", "Made up.", OPERATIONS + COMMON_OPERATIONS, TAGS, SERVERS)


def test_the_document_is_valid_openapi_3_1():
    document = spec()
    validate(document)
    assert document["openapi"] == "3.1.0"


def test_bodies_are_referenced_from_components_in_the_right_mode():
    operation = spec()["paths"]["/things"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ThingIn"}
    created = operation["responses"]["201"]
    assert created["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Thing"}
    assert set(created["headers"]) == {"X-Request-ID", "Location"}
    assert created["content"]["application/json"]["example"] == {"id": 1, "name": "a"}
    assert operation["requestBody"]["content"]["application/json"]["example"] == {"name": "a"}


def test_a_problem_response_shows_each_error_as_the_service_renders_it_and_names_its_types():
    conflict = spec()["paths"]["/things"]["post"]["responses"]["409"]
    [example] = conflict["content"]["application/problem+json"]["examples"].values()
    assert example["value"] == {
        "type": "tag:shop-services,2026:problems/name-taken",
        "title": "Conflict",
        "status": 409,
        "detail": "The name a is taken.",
        "errors": [],
    }
    assert "`tag:shop-services,2026:problems/name-taken`: Another thing has this name." in conflict["description"]


def test_every_admitted_operation_may_answer_503_with_retry_after_and_the_open_ones_do_not():
    for path, item in spec()["paths"].items():
        for operation in item.values():
            admitted = not (
                path.startswith("/docs") or path in ("/health", "/metrics", "/openapi.json", "/asyncapi.json", "/ready")
            )
            if admitted:
                assert operation["responses"]["503"]["headers"]["Retry-After"] == {
                    "$ref": "#/components/headers/Retry-After"
                }
            elif path != "/ready":
                assert "503" not in operation["responses"], path


def test_input_schemas_forbid_unknown_fields_like_the_models():
    validator = schema_validator(spec(), "ThingIn")
    assert validator.is_valid({"name": "a"})
    assert not validator.is_valid({"name": "a", "extra": 1})
    assert not validator.is_valid({"name": ""})


def test_every_error_is_a_problem_and_every_response_names_the_request_id():
    document = spec()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                assert response["headers"]["X-Request-ID"] == {"$ref": "#/components/headers/X-Request-ID"}
                if int(status) >= 400:
                    [(media_type, content)] = response["content"].items()
                    assert media_type == "application/problem+json", (method, path, status)
                    assert content["schema"] == {"$ref": "#/components/schemas/Problem"}, (method, path, status)
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "errors"}


def test_what_parsing_can_answer_is_added_and_explicit_responses_win():
    paths = spec()["paths"]
    assert set(paths["/things"]["post"]["responses"]) == {"201", "400", "408", "409", "413", "415", "422", "500", "503"}
    assert set(paths["/things"]["get"]["responses"]) == {"200", "422", "500", "503"}
    deleted = paths["/things/{id}"]["delete"]["responses"]
    assert set(deleted) == {"204", "404", "500", "503"}
    assert deleted["404"]["description"] == "No such thing."
    assert "content" not in deleted["204"]


def test_query_and_path_parameters():
    parameters = spec()["paths"]["/things"]["get"]["parameters"]
    assert parameters[0] == {"$ref": "#/components/parameters/RequestId"}
    by_name = {p["name"]: p for p in parameters[1:]}
    assert by_name["owner_id"] == {
        "name": "owner_id",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "title": "Owner Id"},
    }
    assert by_name["kind"]["schema"]["default"] == "any"
    owner = {p.get("name"): p for p in spec()["paths"]["/owners/{id}/things"]["get"]["parameters"]}
    assert "owner_id" not in owner
    assert owner["id"]["in"] == "path" and owner["id"]["required"] is True


@pytest.mark.parametrize("title", ["Things", "<script>alert(1)</script>"])
async def test_docs_routes_serve_the_spec_the_page_and_swagger_ui_from_the_package(aiohttp_client, title):
    app = docs_app(lambda: build_spec(title, "", OPERATIONS + COMMON_OPERATIONS, TAGS, SERVERS))
    client = await aiohttp_client(app)

    response = await client.get("/openapi.json")
    assert response.status == 200 and response.content_type == "application/json"
    assert (await response.json())["info"]["title"] == title

    response = await client.get("/docs")
    page = await response.text()
    assert response.status == 200 and response.content_type == "text/html"
    assert '<script src="docs/static/swagger-ui-bundle.js">' in page
    assert '"openapi.json"' in page and "<script>alert" not in page
    assert "http" not in page  # every URL is local: the machines have no internet

    for name, content_types in [
        ("swagger-ui-bundle.js", {"application/javascript", "text/javascript"}),
        ("swagger-ui.css", {"text/css"}),
    ]:
        response = await client.get(f"/docs/static/{name}")
        assert response.status == 200 and response.content_type in content_types
        assert len(await response.read()) > 10_000


def docs_app(spec_builder) -> web.Application:
    app = web.Application()
    add_docs_routes(app, spec_builder)
    return app


async def nothing(request: web.Request) -> web.Response:
    return web.Response()


def test_router_comparison_sees_an_undocumented_route():
    app = docs_app(spec)
    app.router.add_get("/things", nothing)
    app.router.add_get("/undocumented", nothing)
    assert routed(app) - documented(spec()) == {("GET", "/undocumented")}
    assert ("HEAD", "/things") not in routed(app)
