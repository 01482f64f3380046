from __future__ import annotations

import pytest

from jicai.core.tenancy import ScopeError, use_scope
from jicai.organizations.models import Institution


def test_unscoped_query_fails_closed_and_scoped_query_filters(world):
    with pytest.raises(ScopeError):
        list(Institution.objects.all())
    with use_scope(world.scope("hn_admin")):
        codes = sorted(Institution.objects.values_list("code", flat=True))
    assert codes == ["H46010800001", "H46020000002"]
