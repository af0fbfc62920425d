import sys
from pathlib import Path

# Let the tests import `helpers` from this folder without making tests/ a package.
sys.path.insert(0, str(Path(__file__).parent))
