"""Result files carry the date, the commit and the machine they were measured on."""
import re
from datetime import date

from accelgen import results


def test_a_result_file_is_stamped(tmp_path):
    path = results.write("demo", "accelgen demo", "| a |\n|---|\n| 1 |", folder=tmp_path)
    text = path.read_text()
    assert path == tmp_path / "demo.md"
    assert text.startswith("# accelgen demo\n\nMeasured ")
    stamp = text.splitlines()[2]
    assert str(date.today()) in stamp
    assert re.search(r"commit ([0-9a-f]{7,}(-dirty)?|unknown), .+, \d+ cores, Python 3", stamp)
    assert text.endswith("| 1 |\n")
