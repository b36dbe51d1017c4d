"""The report job: what each family's page holds, the bad inputs, and ``--report`` on the CLI."""

from __future__ import annotations

import base64
import csv
import re
from pathlib import Path

import pytest

from archlab.cli import main
from archlab.data import Dataset
from archlab.jobs import train, write_report
from archlab.jobs.data import reopen_data
from archlab.data import DataSpec
from archlab.engine.checkpoint import read_config
from archlab.report.html import CONTENT_SECURITY_POLICY, png_size

# family -> the figures its report must hold
EXPECTED = {
    "cnn": {"learning-curves", "confusion-matrix", "confident-mistakes", "attribution-0", "attribution-2"},
    "transformer": {"learning-curves", "confusion-matrix", "attention-maps"},
    "gpt": {"learning-curves", "attention-maps"},
    "vae": {"learning-curves", "reconstructions", "samples", "latent-scatter"},
    "anomaly": {"learning-curves", "reconstructions", "latent-scatter", "anomaly-histogram", "anomaly-roc"},
    "gcn": {"learning-curves", "confusion-matrix", "gnn-subgraph"},
    "maml": {"learning-curves", "adaptation-curve"},
    "mlp-seeds": {"learning-curves", "confusion-matrix"},
}
MAX_BYTES = 5_000_000


def figures_of(page: str) -> dict[str, tuple[int, int]]:
    """name -> (width, height) of every embedded figure, checked against its PNG."""
    found = {}
    for name, width, height, data in re.findall(r'<img class="figure" data-figure="([^"]+)" width="(\d+)" '
                                                r'height="(\d+)" alt="[^"]*" src="data:image/png;base64,([^"]+)"',
                                                page):
        assert png_size(base64.b64decode(data)) == (int(width), int(height))
        found[name] = (int(width), int(height))
    return found


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_each_family_report_holds_its_figures(family_reports, family):
    path, result = family_reports[family]
    page = path.read_text()
    assert set(figures_of(page)) >= EXPECTED[family]
    assert result.metrics["bytes"] == len(page.encode()) < MAX_BYTES
    assert f'content="{CONTENT_SECURITY_POLICY}"' in page
    assert not re.search(r'(src|href)="(?!data:|#)', page), "every resource is embedded"
    for section in ("Learning curves", "Final metrics", "Environment", "torch", "python"):
        assert section in page


def test_classifier_scores_and_mistakes_match_the_checkpoint(report_runs, tmp_path):
    run = report_runs["cnn"]
    page = write_report([run], tmp_path / "r.html", examples=3).details["report"]
    page = Path(page).read_text()
    assert "per-class scores" in page and "most confidently wrong test examples" in page
    # the page's test accuracy is the one training wrote
    import json

    accuracy = json.loads((run / "metrics.json").read_text())["metrics"]["test_accuracy"]
    assert f"accuracy {accuracy:.4f}" in page
    assert "integrated gradients of 3 test examples" in page


def test_text_classifier_shows_highlighted_tokens_and_wrong_texts(family_reports):
    page = family_reports["transformer"][0].read_text()
    assert page.count("<span title=") > 3  # token attributions, shaded spans
    assert "good" in page or "bad" in page  # decoded texts, not ids


def test_gpt_report_has_generated_text(family_reports):
    page = family_reports["gpt"][0].read_text()
    assert "generated text (200 tokens" in page
    text = re.search(r"<pre>(.*?)</pre>", page, re.S).group(1)
    assert len(text) > 150


def test_seed_runs_show_mean_and_std(family_reports):
    page = family_reports["mlp-seeds"][0].read_text()
    assert re.search(r"test_accuracy</td><td>[0-9.]+ ± [0-9.e-]+ \(2 seeds\)", page)
    assert "2 seed runs (seeds 0, 1)" in page


def test_several_runs_are_overlaid_side_by_side(report_runs, tmp_path):
    result = write_report([report_runs["cnn"], report_runs["vae"]], tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert "<th>cnn</th><th>vae</th>" in page
    assert list(figures_of(page)).count("learning-curves") == 1  # one figure, both runs in it
    assert {"confusion-matrix", "samples"} <= {f["name"] for f in result.details["figures"]}


def test_nan_in_history_is_plotted_with_a_gap_and_a_note(report_runs, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(report_runs["gpt"], run)
    rows = list(csv.DictReader((run / "history.csv").open()))
    rows[0]["val_loss"] = "nan"
    with (run / "history.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    page = Path(write_report([run], tmp_path / "r.html").details["report"]).read_text()
    assert f"run: val_loss is not finite at step(s) {rows[0]['step']}; the curve has a gap there." in page
    assert "learning-curves" in figures_of(page)


def test_run_without_test_split_omits_those_sections_with_a_note(report_runs, tmp_path):
    run = report_runs["cnn"]
    full = reopen_data(DataSpec.from_dict(read_config(run)["data"]))
    no_test = Dataset(full.spec, {k: v for k, v in full.splits.items() if k != "test"})
    result = write_report([run], tmp_path / "r.html", data=no_test)
    page = (tmp_path / "r.html").read_text()
    assert "has no test split" in page
    assert "confusion-matrix" not in {f["name"] for f in result.details["figures"]}
    assert "learning-curves" in {f["name"] for f in result.details["figures"]}


@pytest.mark.parametrize("make", ["empty", "file", "missing", "foreign"])
def test_a_folder_that_is_not_a_run_is_one_line_and_exit_1(tmp_path, capsys, make):
    target = tmp_path / "thing"
    if make == "empty":
        target.mkdir()
    elif make == "file":
        target.write_text("x")
    elif make == "foreign":
        target.mkdir()
        (target / "config.json").write_text('{"format": "something-else"}')
    assert main(["report", str(target), "--out", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("archlab: error:") and "not a run folder" in err
    assert not (tmp_path / "r.html").exists()


def test_out_must_be_html(report_runs, tmp_path, capsys):
    assert main(["report", str(report_runs["cnn"]), "--out", str(tmp_path / "r.png")]) == 2
    assert "must end in .html" in capsys.readouterr().err


def test_train_with_report_writes_it_in_the_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "mlp", "--data", "iris", "--epochs", "2", "--out", str(out), "--report", "--quiet",
                 "--json", "--set", "hidden_dims=[8]"])
    assert code == 0
    import json

    summary = json.loads(capsys.readouterr().out)
    assert summary["figures"] == [str(out / "report.html")]
    assert "confusion-matrix" in figures_of((out / "report.html").read_text())


def test_report_flag_needs_an_out_folder():
    from archlab.errors import ConfigError

    with pytest.raises(ConfigError, match="out folder"):
        train("mlp", "iris", epochs=1, report=True, quiet=True)


def test_gnn_explanation_runs_on_the_receptive_field_with_the_same_output():
    import torch

    from archlab.jobs.report import receptive_field
    from archlab.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("gcn", in_features=3, num_classes=2).eval()
    chain = torch.arange(19)
    edge_index = torch.cat([torch.stack([chain, chain + 1]), torch.stack([chain + 1, chain])], 1)  # a path 0-19
    x = torch.randn(20, 3)
    sub_x, kept, sub_edges, center = receptive_field(model, 10, x, edge_index)
    assert len(sub_x) == 7 and center == 3  # nodes 7..13: two layers, plus the hop their degrees need
    assert kept.min() == 7 and kept.max() == 13 and sub_edges.max() == 6
    with torch.no_grad():
        torch.testing.assert_close(model(sub_x, sub_edges)[center], model(x, edge_index)[10])
