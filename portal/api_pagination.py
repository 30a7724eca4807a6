"""The API's one pagination class: `limit`/`offset`, both checked before any query runs.

DRF's LimitOffsetPagination silently ignores a `limit` it cannot parse and passes any size on to SQL,
where PostgreSQL refuses a LIMIT or OFFSET beyond bigint with a DataError (a 500). Here a value that is
not a plain whole number, or lies outside the bounds below, is a 400 naming the parameter, in the same
JSON shape as every other validation error. An empty value counts as not given.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.pagination import LimitOffsetPagination

MAX_LIMIT = 1000
# Far beyond any table here, and far below PostgreSQL's bigint, so OFFSET + LIMIT always fits.
MAX_OFFSET = 10**12


def _bounded_int(request, name: str, *, low: int, high: int) -> int | None:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    # The length check first: int() refuses strings of more than 4,300 digits with a ValueError.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(high)) or not low <= int(raw) <= high:
        raise exceptions.ValidationError({name: [f"Must be a whole number from {low} to {high:,}."]})
    return int(raw)


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_LIMIT
    max_offset = MAX_OFFSET

    def get_limit(self, request) -> int | None:
        limit = _bounded_int(request, self.limit_query_param, low=1, high=self.max_limit)
        return self.default_limit if limit is None else limit

    def get_offset(self, request) -> int:
        offset = _bounded_int(request, self.offset_query_param, low=0, high=self.max_offset)
        return 0 if offset is None else offset

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {self.limit_query_param: (1, self.max_limit), self.offset_query_param: (0, self.max_offset)}
        for parameter in parameters:
            low, high = bounds[parameter["name"]]
            parameter["schema"].update(minimum=low, maximum=high)
        return parameters
