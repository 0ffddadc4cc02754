"""Execute every notebook in notebooks/ top to bottom, so a broken notebook fails the
suite. Each runs in a temporary copy (nothing is written into the repository) on an
IPython kernel started with this very interpreter, so it sees the same diffhw."""

import os
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

import diffhw

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = ("quickstart", "sensitivity", "sizing", "serving")
CELL_TIMEOUT_S = 120


def test_every_notebook_is_executed():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, tmp_path):
    src = NOTEBOOKS / f"{name}.ipynb"
    work = tmp_path / "run"
    work.mkdir()
    shutil.copy(src, work / src.name)
    nb = nbformat.read(work / src.name, as_version=4)

    # A "python3" kernel spec whose argv is this interpreter (sys.executable), so the
    # kernel imports the same diffhw whatever kernel specs the user has installed.
    write_kernel_spec(tmp_path / "kernels" / "python3")
    km = KernelManager(kernel_name="python3",
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")]))
    assert km.kernel_spec.argv[0] == sys.executable

    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(work)}})
    # The kernel runs in the temporary folder: put the diffhw this test imported first on
    # its path (an editable install or a bare checkout alike).
    env = dict(os.environ)
    root = str(Path(diffhw.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    t0 = time.perf_counter()
    client.execute(env=env)  # raises CellExecutionError naming the cell on the first error
    seconds = time.perf_counter() - t0
    print(f"{name}.ipynb ran in {seconds:.1f} s")

    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
              if out.get("output_type") == "error"]
    assert not errors
    assert all(cell.get("execution_count") for cell in nb.cells if cell.cell_type == "code")
