"""Suite-wide setup: keep state out of the working tree and threads low on shared CI machines."""

import os
import tempfile

# Set before any module reads settings, so nothing of a test run lands in ./.nas-data.
os.environ.setdefault("NAS_DATA_DIR", tempfile.mkdtemp(prefix="nas-test-data-"))
os.environ.setdefault("OMP_NUM_THREADS", "1")
