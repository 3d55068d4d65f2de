"""Docker HEALTHCHECK of the Nextcloud stand-in (test double): healthy once ``/status.php``
answers 200 with ``"installed": true``."""

from __future__ import annotations

import json
import sys
import urllib.request


def main() -> int:
    req = urllib.request.Request("http://127.0.0.1/status.php", headers={"Host": "localhost"})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:  # noqa: S310 (fixed local URL)
            status = json.loads(resp.read())
    except (OSError, ValueError) as e:
        print(f"status.php: {e}")
        return 1
    print(json.dumps(status))
    return 0 if status.get("installed") is True else 1


if __name__ == "__main__":
    sys.exit(main())
