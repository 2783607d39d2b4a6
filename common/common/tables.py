"""Views that answer JSON or, for spreadsheets, CSV (`?format=csv` or `Accept: text/csv`)."""

from __future__ import annotations

from rest_framework.response import Response

from common.errors import InvalidInput
from common.renderers import CSVRenderer, DecimalSafeJSONRenderer

FORMATS = ("json", "csv")


class CsvOrJsonMixin:
    """For an APIView: JSON as every view, or a CSV table when asked; errors are always the JSON envelope.

    The view answers `self.table(request, columns, rows, filename)` when `self.wants_csv(request)`.
    """

    renderer_classes = [DecimalSafeJSONRenderer, CSVRenderer]

    def perform_content_negotiation(self, request, force=False):
        """?format= wins over the Accept header (a client library may always send application/json)."""
        asked = request.query_params.get("format")
        if asked is None:
            return super().perform_content_negotiation(request, force)
        for renderer in self.get_renderers():
            if renderer.format == asked:
                return renderer, renderer.media_type
        if force:
            return super().perform_content_negotiation(request, force)
        raise InvalidInput.on("format", f"Must be one of: {', '.join(FORMATS)}.")

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400 and getattr(request, "accepted_renderer", None) is not None:
            request.accepted_renderer, request.accepted_media_type = DecimalSafeJSONRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)

    @staticmethod
    def wants_csv(request) -> bool:
        return request.accepted_renderer.format == "csv"

    @staticmethod
    def table(columns: list[str], rows: list[list], filename: str) -> Response:
        return Response(
            {"columns": columns, "rows": rows},
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
