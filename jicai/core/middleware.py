"""Sets the request's tenant scope from the logged-in user; anonymous requests get none."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.utils import translation

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


class LanguageMiddleware:
    """Chinese unless the user picked another language: browsers' Accept-Language is ignored.

    Hospital PCs often run English-language browsers; the product speaks zh-hans by default
    and switches only on the user's explicit choice (the language cookie).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
        supported = {code for code, _ in settings.LANGUAGES}
        language = chosen if chosen in supported else settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = language
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        return response
