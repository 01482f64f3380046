"""Check that the compiled Chinese catalogue (.mo) matches its source (.po); --compile rewrites it.

The .mo is committed so that installing Jicai needs no gettext tools; this check keeps it honest.
Needs GNU msgfmt (Debian package gettext) only to compile; without it the check is skipped.
"""

from __future__ import annotations

import gettext
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CATALOGUES = sorted((Path(__file__).resolve().parents[1] / "jicai" / "locale").glob("*/LC_MESSAGES/django.po"))


def compile_po(po: Path, mo: Path) -> None:
    subprocess.run(["msgfmt", "--check", "-o", str(mo), str(po)], check=True)  # noqa: S603, S607


def catalogue(mo: Path) -> dict[object, str]:
    with mo.open("rb") as fh:
        return dict(gettext.GNUTranslations(fh)._catalog)  # type: ignore[attr-defined]


def main() -> int:
    if shutil.which("msgfmt") is None:
        print("msgfmt not found: skipping the translation check (apt-get install gettext)")
        return 0
    stale = []
    for po in CATALOGUES:
        mo = po.with_suffix(".mo")
        if "--compile" in sys.argv:
            compile_po(po, mo)
            print(f"compiled {mo}")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / "django.mo"
            compile_po(po, fresh)
            if not mo.exists() or catalogue(fresh) != catalogue(mo):
                stale.append(mo)
        untranslated = po.read_text(encoding="utf-8").count('\nmsgstr ""\n\n')
        if untranslated:
            print(f"{po}: {untranslated} untranslated message(s)")
            stale.append(po)
    for path in stale:
        print(f"out of date: {path} — run `make messages`")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
