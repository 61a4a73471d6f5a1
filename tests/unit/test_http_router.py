"""Path templates of the route table (upriver/http/spec.py Route.match, routes.find) and how a handler's
exception is answered on Upriver's and on Marquez's routes (routes.refusal)."""

from __future__ import annotations

import pytest

from upriver.http import routes
from upriver.http.api import ApiError, MarquezError
from upriver.http.spec import Route
from upriver.readside.lineage import NodeNotFound

JOB = Route(method="GET", path="/api/v1/namespaces/{namespace}/jobs/{job}", summary="", name="job", marquez=True)


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("/api/v1/namespaces/food_delivery/jobs/etl.orders", {"namespace": "food_delivery", "job": "etl.orders"}),
        # a namespace that is a URI and a name with a slash arrive percent-encoded (encodeURIComponent)
        (
            "/api/v1/namespaces/postgres%3A%2F%2Fdb%3A5432/jobs/a%2Fb%20c",
            {"namespace": "postgres://db:5432", "job": "a/b c"},
        ),
        ("/api/v1/namespaces/%E6%97%A5%E6%9C%AC/jobs/%25x%23y", {"namespace": "日本", "job": "%x#y"}),
    ],
)
def test_a_template_captures_each_segment_percent_decoded(raw: str, want: dict[str, str]) -> None:
    assert JOB.match(raw) == want


@pytest.mark.parametrize(
    "raw",
    [
        "/api/v1/namespaces/ns/jobs",
        "/api/v1/namespaces/ns/jobs/a/b",
        "/api/v1/namespaces//jobs/x",
        "/api/v1/namespace/ns/jobs/x",
        "/api/v1/namespaces/ns/jobs/",
    ],
)
def test_a_template_matches_only_its_own_shape(raw: str) -> None:
    assert JOB.match(raw) is None


def test_path_names_in_order() -> None:
    assert JOB.path_names == ("namespace", "job") and JOB.templated
    assert not Route(method="GET", path="/api/v1/upstream", summary="", name="u").templated


def test_find_prefers_a_literal_path_and_knows_the_method() -> None:
    found = routes.find("GET", "/api/v1/upstream")
    assert found is not None and found[0].path == "/api/v1/upstream" and found[1] == {}
    assert routes.find("DELETE", "/api/v1/upstream") is None
    assert routes.find("GET", "/api/v1/no/such/thing") is None


@pytest.mark.parametrize(
    ("exc", "status"),
    [(NodeNotFound("no node 'x'"), 404), (ValueError("depth must be"), 400), (ApiError(413, "too big"), 413)],
)
def test_errors_take_marquez_shape_on_marquez_routes_only(exc: Exception, status: int) -> None:
    upriver_route = Route(method="GET", path="/api/v1/x", summary="", name="x")
    plain = routes.refusal(upriver_route, exc)
    assert isinstance(plain, ApiError) and not isinstance(plain, MarquezError)
    assert plain.status == status and plain.body() == {"error": str(exc)}
    marquez = routes.refusal(JOB, exc)
    assert isinstance(marquez, MarquezError) and marquez.body() == {"code": status, "message": str(exc)}


def test_other_exceptions_are_left_for_the_server_to_answer_500() -> None:
    boom = RuntimeError("bug")
    assert routes.refusal(JOB, boom) is boom
