"""The notebooks run top to bottom in the project's environment, and are stored clean.

Each notebook is executed by nbclient in a kernel that must be this virtual environment's
Python (checked inside the kernel), with ``AMPLIFY_WORKSPACE`` pointing at a temporary
folder and matplotlib on the Agg backend. A cell that raises fails the test with the
cell's error.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
KERNEL_CHECK = "import sys\nprint(sys.prefix)"


def test_the_four_notebooks_are_there() -> None:
    assert NAMES == [
        "01_quickstart.ipynb",
        "02_leads.ipynb",
        "03_device_as_a_service.ipynb",
        "04_bring_your_own_data.ipynb",
    ]


@pytest.mark.parametrize("name", NAMES)
def test_stored_without_outputs_and_defining_no_functions(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, name
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
        # anything reusable belongs in amplify_ml, with a test
        assert not any(
            line.lstrip().startswith(("def ", "class ")) for line in cell.source.split("\n")
        ), cell.source[:60]
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(KERNEL_CHECK))
    # the kernel inherits the environment: the notebook's workspace, a non-GUI backend
    monkeypatch.setenv("AMPLIFY_WORKSPACE", str(tmp_path / "workspace"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # the traceback without colours
        pytest.fail(f"{name}: a cell raised:\n{text}", pytrace=False)
    prefix = "".join(o.get("text", "") for o in nb.cells[0].outputs).strip()
    assert Path(prefix).resolve() == Path(sys.prefix).resolve(), (
        f"{name} ran in {prefix}, not in this environment ({sys.prefix})"
    )
    # everything it wrote is in its workspace, under the temporary folder
    written = list((tmp_path / "workspace").iterdir())
    assert len(written) == 1 and written[0].name.startswith("amplify-0"), written
    images = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert images, f"{name} showed no plot"
