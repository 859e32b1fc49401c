"""The endpoints in Kinto's OpenAPI document (``GET /v1/__api__``)."""

import pytest
from kinto.core.views.openapi import openapi_view

from .support import LIST_URL, BaseWebTest


CHANGESET = "/buckets/{bucket_id}/collections/{collection_id}/changeset"
LIST_CHANGESET = "/buckets/monitor/collections/changes/changeset"


class TestOpenAPI(BaseWebTest):
    @pytest.fixture(autouse=True)
    def _fresh_document(self):
        # Kinto builds the document once per process, and caches it on its view.
        openapi_view.__dict__.pop("__json__", None)
        yield
        openapi_view.__dict__.pop("__json__", None)

    def operation(self, path: str) -> dict:
        return self.app.get("/__api__").json["paths"][path]["get"]

    def query_parameters(self, path: str) -> dict:
        parameters = self.operation(path)["parameters"]
        return {p["name"]: p for p in parameters if p["in"] == "query"}

    def test_changeset_with_its_query_parameters(self):
        parameters = self.query_parameters(CHANGESET)
        assert parameters.keys() == {"_expected", "_since", "_limit"}
        assert parameters["_expected"]["required"] is True
        assert parameters["_since"]["required"] is False
        assert parameters["_limit"]["minimum"] == 1
        assert self.operation(CHANGESET)["operationId"] == "get_collection_changeset"
        assert {"200", "400", "401", "403", "404", "503"} <= self.operation(CHANGESET)[
            "responses"
        ].keys()

    def test_list_changeset_with_its_filters(self):
        parameters = self.query_parameters(LIST_CHANGESET)
        assert parameters.keys() == {"_expected", "_since", "_limit", "bucket", "collection"}
        assert "307" in self.operation(LIST_CHANGESET)["responses"]

    def test_list_keeps_kinto_parameters(self):
        parameters = self.query_parameters(LIST_URL)
        assert {"_since", "_before", "_limit", "_sort", "_fields"} <= parameters.keys()
