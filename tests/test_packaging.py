"""The Kinto range declared is the one CI tests."""

import configparser
import re
from pathlib import Path


ROOT = Path(__file__).parent.parent


def test_lowest_environment_pins_the_declared_floor():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    requires = setup["options"]["install_requires"]
    floor = re.search(r"^kinto >= ([0-9.]+), < 27$", requires, re.MULTILINE)[1]
    extras = setup["options.extras_require"]["test"]
    assert f"kinto[postgresql] >= {floor}, < 27" in extras
    pins = (ROOT / ".ci" / "kinto-lowest.txt").read_text()
    assert re.search(rf"^kinto=={floor}(\.0)?$", pins, re.MULTILINE)
