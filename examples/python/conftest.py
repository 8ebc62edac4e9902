"""Makes the Patchbay fixtures (`patchbay_seed`, `patchbay`, `sandbox`) available
to the tests in this directory.

The shortest way is `pytest_plugins = ["patchbay_sandbox"]`, but pytest honours
`pytest_plugins` only in the top-level conftest.py (the rootdir's, or that of the
directory pytest is pointed at) and refuses it elsewhere, e.g. when pytest runs
from a parent directory. Importing the fixtures works wherever this file sits:
"""

import os
import sys

from patchbay_sandbox import patchbay, patchbay_seed, patchbay_servers, sandbox  # noqa: F401

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
