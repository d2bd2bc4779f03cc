"""The README's Python example runs as written."""

import re
from pathlib import Path


def test_python_api_example(capsys):
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    example = re.search(r"## Python API\n\n```python\n(.*?)```", readme, re.S).group(1)
    exec(compile(example, "README.md", "exec"), {})
    assert "intar schedule" in capsys.readouterr().out
