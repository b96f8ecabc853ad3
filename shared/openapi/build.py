"""The OpenAPI 3.1 document, built from a service's declared operations (shared/openapi/declare.py).

Inputs are described in pydantic's validation mode, outputs in serialization mode; every description comes from a
model's `Field(description=...)` or from the operation's declaration, every example from a model instance.
"""

import inspect
from importlib.metadata import version

import orjson
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from shared.http import refusal_of
from shared.openapi.declare import (
    ADMITTED_PROBLEMS,
    ANY_PROBLEMS,
    BODY_PROBLEMS,
    PATH_PROBLEMS,
    QUERY_PROBLEMS,
    REQUEST_ID,
    RETRY_AFTER,
    Header,
    Model,
    Operation,
    Problem,
    Raw,
    Response,
)
from shared.problems import BLANK_TYPE, PROBLEM_CONTENT_TYPE, example_body

REF_TEMPLATE = "#/components/schemas/{model}"
# What no operation can declare: the answer to a method a path does not have.
EVERY_PATH = (
    "\n\nEvery error is an RFC 9457 problem (`application/problem+json`) whose `type` is `about:blank` unless "
    "the response lists a type of its own. A method a path does not list is answered 405, `Allow` naming those "
    "it has. Every response carries `X-Request-ID`; every 503 of an API operation carries `Retry-After`."
)
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}


def build_spec(
    title: str, description: str, operations: list[Operation], tags: dict[str, str], servers: list[dict]
) -> dict:
    """The OpenAPI 3.1 document of `operations`; `tags` describes each tag they use."""
    components: dict[str, dict] = {"schemas": {}, "headers": {}}
    refs = _model_refs(operations, components["schemas"])
    paths: dict[str, dict] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs, components)
    used_tags = dict.fromkeys(op.tag for op in operations)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version("shop-services"),
            "description": description + EVERY_PATH,
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": servers,
        # A tag without a description is for tests/test_docs.py to refuse, not for the service to fail to start.
        "tags": [{"name": tag} | ({"description": tags[tag]} if tag in tags else {}) for tag in used_tags],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components["schemas"].items())),
            "parameters": {
                "RequestId": {
                    "name": REQUEST_ID.name,
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "Echoed in the response and logs if it is 1-128 visible ASCII characters "
                    "(no spaces); otherwise a new id is made up.",
                    "example": "3f2c9a4e-checkout-7",
                },
            },
            "headers": dict(sorted(components["headers"].items())),
        },
    }


def _model(body: object) -> type[BaseModel] | None:
    if isinstance(body, BaseModel):
        return type(body)
    return body if isinstance(body, type) and issubclass(body, BaseModel) else None


def _example(body: Model, sent: bool = False) -> object:
    """An instance's JSON exactly as a handler sends it (shared.http.to_json); for a request (`sent`), only the
    fields it was given (a partial update's absent fields are not nulls)."""
    return orjson.loads(body.model_dump_json(exclude_unset=sent)) if isinstance(body, BaseModel) else None


def _model_refs(operations: list[Operation], schemas: dict) -> dict:
    """One pydantic pass over every body model, so shared models land once in `components.schemas`."""
    pairs: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Problem, "serialization")]
    for op in operations:
        request = _model(op.request)
        if request is not None:
            pairs.append((request, "validation"))
        for body, _ in op.responses.values():
            model = _model(body)
            if model is not None:
                pairs.append((model, "serialization"))
    refs, schema = models_json_schema(list(dict.fromkeys(pairs)), ref_template=REF_TEMPLATE)
    schemas.update(schema.get("$defs", {}))
    return refs


def _responses(op: Operation) -> dict[int, Response]:
    """What every operation may answer, what its parameters and body add, then what it declares itself."""
    responses = dict(ANY_PROBLEMS)
    if op.admitted:
        responses.update(ADMITTED_PROBLEMS)
    if op.path_params:
        responses.update(PATH_PROBLEMS)
    if op.query is not None:
        responses.update(QUERY_PROBLEMS)
    if op.request is not None:
        responses.update(BODY_PROBLEMS)
        model = _model(op.request)
        if model is not None:  # an empty object, refused as the service refuses it
            responses[422] = ((refusal_of(model, {}),), BODY_PROBLEMS[422][1])
    responses.update(op.responses)
    return responses


def _operation(op: Operation, refs: dict, components: dict) -> dict:
    parameters: list[dict] = [{"$ref": "#/components/parameters/RequestId"}]
    for name in op.path_params:
        parameters.append(
            {"name": name, "in": "path", "required": True, "description": "The id.", "schema": ID_SCHEMA, "example": 1}
        )
    if op.query is not None:
        parameters += _query_parameters(op.query, components["schemas"])
    for header in op.headers:
        parameter = {
            "name": header.name,
            "in": "header",
            "required": header.required,
            "description": header.description,
            "schema": header.schema,
        }
        parameters.append(parameter | ({"example": header.example} if header.example is not None else {}))
    result: dict = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": op.description,
        "tags": [op.tag],
        "parameters": parameters,
    }
    if op.request is not None:
        media = {"schema": refs[(_model(op.request), "validation")]}
        example = _example(op.request, sent=True)
        result["requestBody"] = {
            "required": True,
            "content": {"application/json": media | ({"example": example} if example is not None else {})},
        }
    result["responses"] = {}
    for status, (body, description) in sorted(_responses(op).items()):
        headers = op.response_headers.get(status, ())
        if status == 503 and op.admitted:
            headers = (RETRY_AFTER, *headers)
        result["responses"][str(status)] = _response(body, description, (REQUEST_ID, *headers), refs, components)
    return result


def header_refs(headers: tuple[Header, ...], components: dict) -> dict:
    """Each header as a reference to its one declaration in `components.headers`."""
    refs = {}
    for header in headers:
        declared: dict = {"description": header.description, "schema": header.schema}
        if header.example is not None:
            declared["example"] = header.example
        components["headers"][header.name] = declared
        refs[header.name] = {"$ref": f"#/components/headers/{header.name}"}
    return refs


def _response(body, description: str, headers: tuple[Header, ...], refs: dict, components: dict) -> dict:
    response: dict = {"description": description, "headers": header_refs(headers, components)}
    if isinstance(body, Raw):
        media = {"schema": body.schema} | ({"example": body.example} if body.example is not None else {})
        response["content"] = {body.media_type: media}
    elif isinstance(body, tuple):
        response["description"] = description + _problem_types(body)
        examples = {}
        for i, error in enumerate(body):
            value = example_body(error)
            examples[_example_name(error, i)] = {"summary": value["detail"], "value": value}
        response["content"] = {
            PROBLEM_CONTENT_TYPE: {"schema": refs[(Problem, "serialization")], "examples": examples},
        }
    elif body is not None:
        model = _model(body)
        media_type = PROBLEM_CONTENT_TYPE if model is Problem else "application/json"
        media = {"schema": refs[(model, "serialization")]}
        example = _example(body)
        response["content"] = {media_type: media | ({"example": example} if example is not None else {})}
    return response


def _example_name(error: object, index: int) -> str:
    kind = getattr(error, "type", BLANK_TYPE)
    return kind.rsplit("/", 1)[-1] if kind != BLANK_TYPE else f"{type(error).__name__}{index or ''}"


def _problem_types(errors: tuple) -> str:
    """The problem types of a response besides `about:blank`, each with what it means (its class's docstring)."""
    kinds = {
        error.type: inspect.cleandoc(type(error).__doc__ or "")
        for error in errors
        if getattr(error, "type", BLANK_TYPE) != BLANK_TYPE
    }
    if not kinds:
        return ""
    return "\n\nProblem `type`s:\n" + "".join(f"\n- `{uri}`: {about}" for uri, about in kinds.items())


def _query_parameters(model: type[BaseModel], schemas: dict) -> list[dict]:
    schema = model.model_json_schema(mode="validation", ref_template=REF_TEMPLATE)
    schemas.update(schema.pop("$defs", {}))
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema["properties"].items():
        prop = _not_null(prop)
        parameter = {"name": name, "in": "query", "required": name in required}
        if "description" in prop:
            parameter["description"] = prop["description"]
        parameters.append(parameter | {"schema": prop})
    return parameters


def _not_null(prop: dict) -> dict:
    """`int | None = None` is an optional parameter; a query string cannot carry a JSON null."""
    variants = [v for v in prop.get("anyOf", ()) if v != {"type": "null"}]
    if len(variants) != 1 or len(prop["anyOf"]) != 2:
        return dict(prop)
    rest = {k: v for k, v in prop.items() if k != "anyOf" and not (k == "default" and v is None)}
    return {**variants[0], **rest}
