"""The tutorials run end to end (small settings)."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

TUTORIALS = sorted((Path(__file__).resolve().parent.parent / "tutorials").glob("*.ipynb"))


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_executes(path, tmp_path, monkeypatch):
    monkeypatch.setenv("LAVA_LOCAL_TUTORIAL_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))
    expected = {"01_stllr_on_lava": ["sim-fixed: accuracy", "after online learning"],
                "02_local_rules_compared": ["solsa", "ttlbptt", "K="],
                "03_event_data": ["frames (100, 2312)", "steps/s", "cache:"],
                "04_tess_on_lava": ["trains layers", "f = identity", "sim-fixed: accuracy",
                                    "test accuracy before", "after online learning"],
                "05_deploy_paper_nets": ["recurrent sim-fixed", "vgg9 sim-float",
                                         "agreement with the batched model",
                                         "layers that learned", "Loihi 2 chip"]}
    for phrase in expected[path.stem]:
        assert phrase in text
    assert os.environ["LAVA_LOCAL_TUTORIAL_SMALL"] == "1"
