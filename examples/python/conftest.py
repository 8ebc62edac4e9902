"""Registers the Patchbay fixtures (`patchbay_seed`, `patchbay`, `sandbox`).

`pytest_plugins` is honoured only in the conftest.py of the directory pytest is
pointed at (or the rootdir). If you run pytest from a parent directory, import
the fixtures instead:

    from patchbay_sandbox import patchbay, patchbay_seed, patchbay_servers, sandbox  # noqa: F401
"""

import os
import sys

pytest_plugins = ["patchbay_sandbox"]

# Specific to the Patchbay repository: use the OpenInt SDK that .ci/run installs
# under target/python/openint-<version> (OPENINT_SDK_VERSION picks one, 2.8.0 by
# default) when none is importable already. Drop this block in your own project.
try:
    import openint  # noqa: F401
except ImportError:
    _sdk = os.path.join(
        os.path.dirname(__file__), "..", "..", "target", "python",
        "openint-" + os.environ.get("OPENINT_SDK_VERSION", "2.8.0"),
    )
    if os.path.isdir(_sdk):
        sys.path.insert(0, os.path.abspath(_sdk))
