"""The ```python blocks of the topic pages in docs/ run as written, with small sizes.

Each page's blocks run in order in one namespace (later blocks use what earlier ones define),
with step and sample counts shrunk so a page takes seconds; nothing else is changed.
"""
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
SHRINK = [
    (r"\bsteps=\d+", "steps=2"),
    (r"\brange\(50\)", "range(2)"),
    (r"\bn_train=\d+", "n_train=100"),
    (r"\bn_test=\d+", "n_test=50"),
    (r"\bn_interior=\d+", "n_interior=100"),
    (r"\bn_boundary=\d+", "n_boundary=20"),
]
# page -> optional packages its blocks import
PAGES = {"pruning.md": (), "symbolic.md": ("sympy",), "pinns.md": ()}


def python_blocks(page: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", (DOCS / page).read_text(), flags=re.S | re.M)


def shrink(code: str) -> str:
    for pattern, replacement in SHRINK:
        code = re.sub(pattern, replacement, code)
    return code


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_blocks_run(page, tmp_path, monkeypatch):
    for module in PAGES[page]:
        pytest.importorskip(module)
    blocks = python_blocks(page)
    assert blocks, f"docs/{page} has no python block"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"__docs_{page}__"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(shrink(code), f"docs/{page} python block {i + 1}", "exec"), namespace)
        except Exception as err:  # name the block: the traceback alone points at exec
            raise AssertionError(f"docs/{page} python block {i + 1} failed: {type(err).__name__}: {err}\n"
                                 f"{shrink(code)}") from err
