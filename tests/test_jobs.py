"""The jobs the CLI runs, called directly: typed config in, typed result out; the run record's
round trip and its refusal of corrupt records."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import build_parser, main
from chainrule.cli.commands._common import config_from
from chainrule.errors import ConfigError
from chainrule.jobs.common import check_writable
from chainrule.jobs.evaluate import EvaluateConfig, run_evaluate
from chainrule.jobs.explain import ExplainConfig, run_explain
from chainrule.jobs.gradcheck import GradcheckConfig, run_gradcheck
from chainrule.jobs.predict import PredictConfig, run_predict
from chainrule.jobs.report import ReportConfig, run_report
from chainrule.jobs.train import TrainConfig, default_lr, run_train
from chainrule.report.record import Evaluation, RunRecord, RunRecordError
from chainrule.train import History


@pytest.fixture(scope="module")
def blobs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two separable Gaussian blobs in 4-D, 300 samples, as an ``.npz`` with x and y."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    x = rng.standard_normal((300, 4)) + 3.0 * y[:, None]
    path = tmp_path_factory.mktemp("data") / "blobs.npz"
    np.savez(path, x=x.astype(np.float32), y=y)
    return path


@pytest.fixture(scope="module")
def trained(
    blobs: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[RunRecord, TrainConfig, list[str]]:
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(
        data=str(blobs),
        layers=[4, 8, 2],
        epochs=3,
        batch_size=16,
        optimizer="sgd",  # the seeds' settings: a .npz table would otherwise get Adam at 1e-3 (issue 11)
        lr=0.1,
        progress=False,
        save=str(out / "m.safetensors"),
        log=str(out / "run.json"),
    )
    said: list[str] = []
    return run_train(cfg, log=said.append), cfg, said


def test_run_train_returns_the_run_record(trained) -> None:
    record, cfg, said = trained
    assert isinstance(record, RunRecord) and isinstance(record.history, History)
    assert len(record.history.epochs) == 3 and record.history.runner
    assert record.evaluation is not None and record.evaluation.accuracy > 0.9
    assert sum(map(sum, record.evaluation.confusion)) == 60  # the 20% held out for testing
    assert record.config["layers"] == [4, 8, 2] and record.config["lr"] == default_lr("sgd") == 0.1
    assert record.config["backend"] and record.config["dataset"]
    assert record.gradient_flow is not None and record.flow is not None  # on with --log
    assert len(said) == 1 and said[0] == said[0].strip()  # the dataset summary, through ``log``
    assert Path(cfg.save).exists() and Path(cfg.log).exists()


def test_the_log_is_the_record(trained) -> None:
    record, cfg, _ = trained
    assert RunRecord.load(cfg.log).to_dict() == record.to_dict()
    json.loads(Path(cfg.log).read_text(), parse_constant=pytest.fail)  # strict JSON: no NaN/Infinity


def test_record_round_trip(trained) -> None:
    record, _, _ = trained
    d = record.to_dict()
    assert set(d) == {"chainrule_version", "config", "history", "evaluation", "gradient_flow"}
    again = RunRecord.from_dict(json.loads(json.dumps(d)))
    assert again.to_dict() == d
    assert again.evaluation == record.evaluation
    assert again.history.epochs == record.history.epochs
    assert RunRecord.from_json(record.to_json()).to_dict() == d


def test_nan_is_null_on_disk_and_nan_again_in_memory(tmp_path: Path) -> None:
    rec = RunRecord(
        config={"layers": [2, 2]},
        history=History(epochs=[{"epoch": 1, "loss": math.nan}], runner="plain"),
        evaluation=Evaluation(loss=math.inf, accuracy=0.5, confusion=[[1, 0], [1, 0]]),
    )
    path = rec.save(tmp_path / "r.json")
    d = json.loads(path.read_text())
    assert d["history"]["epochs"][0] == {"epoch": 1, "loss": None} and d["evaluation"]["loss"] is None
    back = RunRecord.load(path)
    assert math.isnan(back.history.epochs[0]["loss"]) and math.isnan(back.evaluation.loss)
    assert back.gradient_flow is None and back.flow is None


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.pop("history"), "missing key 'history'"),
        (lambda d: d.update(config="x"), "'config' must be an object"),
        (lambda d: d["history"]["epochs"][0].update(loss="oops"), r"epochs\[0\]\.loss must be a number"),
        (lambda d: d["evaluation"].update(confusion=[[1]] * 2), "square"),
        (lambda d: d["gradient_flow"].pop("layers"), "gradient_flow is missing 'layers'"),
    ],
)
def test_a_corrupt_record_is_refused(trained, mutate, match: str) -> None:
    d = trained[0].to_dict()
    mutate(d)
    with pytest.raises(RunRecordError, match=match):
        RunRecord.from_dict(d, source="RUN.json")


def test_a_corrupt_file_is_refused_by_the_report_job_and_the_cli(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "run.json"
    bad.write_text('{"chainrule_version": "0.1.0", "config": {}', encoding="utf-8")
    with pytest.raises(RunRecordError, match=r"run.json: not valid JSON \(line 1"):
        run_report(ReportConfig(run=str(bad), out=str(tmp_path / "r.html")))
    assert main(["report", str(bad), "--out", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("chainrule: error:") and "not valid JSON" in err[0]
    assert not (tmp_path / "r.html").exists()


def test_run_report_writes_html(trained, tmp_path: Path) -> None:
    _, cfg, _ = trained
    path = run_report(ReportConfig(run=cfg.log, out=str(tmp_path / "r.html"), title="blobs"))
    assert path.read_text(encoding="utf-8").count('<img src="data:image/png;base64,') == 3


def test_train_refuses_before_training(blobs: Path, tmp_path: Path) -> None:
    said: list[str] = []
    with pytest.raises(ConfigError, match=r"directory .* does not exist"):
        run_train(TrainConfig(data=str(blobs), save=str(tmp_path / "no" / "m.safetensors")), log=said.append)
    with pytest.raises(ConfigError, match="ends with 3 outputs but the data has 2 classes"):
        run_train(TrainConfig(data=str(blobs), layers=[4, 3], progress=False), log=said.append)
    assert len(said) == 1  # the data was loaded for the second, nothing was trained
    with pytest.raises(ConfigError, match="cannot write"):
        check_writable(tmp_path / "missing" / "x.json")


def test_evaluate_and_predict_the_saved_model(trained, blobs: Path, tmp_path: Path) -> None:
    record, cfg, _ = trained
    res = run_evaluate(EvaluateConfig(model=cfg.save, data=str(blobs), progress=False))
    assert res.accuracy == pytest.approx(record.evaluation.accuracy) and res.n == 60
    assert res.confusion.tolist() == record.evaluation.confusion
    assert len(res.per_class_accuracy) == 2
    rows = tmp_path / "rows.csv"
    np.savetxt(rows, np.array([[0.0, 0, 0, 0], [3.0, 3, 3, 3]]), delimiter=",", header="a,b,c,d", comments="")
    pred = run_predict(PredictConfig(model=cfg.save, input=str(rows), proba=True))
    assert pred.labels == [0, 1] and pred.probabilities.shape == (2, 2)


def test_gradcheck_and_explain_jobs() -> None:
    report = run_gradcheck(GradcheckConfig(layers=[3, 4, 2], activation="tanh", loss="squared"))
    assert report.ok and list(report.results) == ["tanh/squared"]
    out = run_explain(ExplainConfig(seed002=True, format="json"))
    assert out.ok and json.loads(out.text)
    a = run_explain(ExplainConfig(layers=[3, 2, 2], seed=7))
    b = run_explain(ExplainConfig(layers=[3, 2, 2], seed=7))
    assert a.ok and a.text == b.text and "drawn from N(0, 1) with seed 7" in a.text


@pytest.mark.parametrize(
    ("command", "cls", "extra"),
    [
        ("train", TrainConfig, {"progress": True}),
        ("evaluate", EvaluateConfig, {"progress": True}),
        ("gradcheck", GradcheckConfig, {"every_kind": False}),
        ("explain", ExplainConfig, {}),
    ],
)
def test_cli_defaults_are_the_config_defaults(command: str, cls: type, extra: dict) -> None:
    """The options' defaults and the dataclass defaults agree, so the CLI and a Python caller
    who gives nothing get the same job."""
    argv = [command, "--model", "m.safetensors"] if command == "evaluate" else [command]
    cfg = config_from(cls, build_parser().parse_args(argv), **extra)
    required = {
        f.name: getattr(cfg, f.name)
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    assert cfg == cls(**required)
