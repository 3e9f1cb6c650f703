"""Make docs/dashboard.png: the dashboard on the shipped demo plan, after `doit` ran it.

    python tests/screenshot_demo.py [OUT.png]

Copies plans/demo.yaml into a temp checkout, runs `doit`, starts `doit serve`, opens the
page in headless chromium with one task selected (its log shown) and saves a PNG.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from chromium import Chromium
from webclient import serving

ROOT = Path(__file__).resolve().parent.parent


def main(out: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        co = Path(tmp) / "checkout"
        (co / "plans").mkdir(parents=True)
        shutil.copy(ROOT / "plans" / "demo.yaml", co / "plans")
        (co / "dodo.py").write_text("from orchlib.dodo import *  # noqa: F403\n")
        subprocess.run([sys.executable, "-m", "doit"], cwd=co, check=True, capture_output=True)
        with serving(co) as server, Chromium(Path(tmp) / "profile", 1280, 1000) as browser:
            page = browser.open(f"{server.url}#plan=demo&task=lib-tests")
            page.wait_for("document.getElementById('log').textContent.includes('[DONE:')")
            page.screenshot(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "dashboard.png"))
