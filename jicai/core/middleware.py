"""Sets the request's tenant scope from the logged-in user; anonymous requests get none."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from jicai.core.tenancy import Scope, ScopeError, use_scope


def scope_for_request(request: HttpRequest) -> Scope | None:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    try:
        return user.scope()  # type: ignore[no-any-return]
    except Exception:  # a misconfigured account gets no access rather than a crash
        return None


class ScopeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        scope = scope_for_request(request)
        request.scope = scope  # type: ignore[attr-defined]
        with use_scope(scope):
            return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, ScopeError):
            raise PermissionDenied(str(exception)) from exception
        return None
