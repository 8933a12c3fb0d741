"""Export to ONNX / TorchScript (outputs match PyTorch, dynamic sizes, metadata), and the
``lumde export`` / ``lumde bench`` commands."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import lumde_depth
from lumde_depth.cli.main import main
from lumde_depth.engine.export import (DepthOnly, ExportError, export_model, export_onnx, read_export_meta,
                                       run_exported, verify_export)
from lumde_depth.engine.profile import (count_flops, count_params, example_inputs, measure_latency, parse_spec,
                                        profile_spec)
from lumde_depth.models import build
from lumde_depth.models.io import save_model

torch.set_num_threads(1)
META = {"input_size": [32, 64], "depth_range": [0.1, 80.0], "kind": "completion"}


@pytest.mark.parametrize("name, kwargs", [("cdspn", {"scale": 32}), ("lspkd_student", {"width": 0.125}),
                                          ("lspkd_student", {"width": 0.125, "guided": True})])
def test_exports_match_pytorch(tmp_path, name, kwargs):
    torch.manual_seed(0)
    model = build(name, **kwargs).eval()
    if kwargs.get("guided"):   # a trained residual, not the zero-initialised head (output = prefill)
        torch.nn.init.normal_(model.head.weight, std=0.05)
    # exported at 32x64, checked at 40x52 (not a multiple of the stride): the axes are dynamic
    results = export_model(model, tmp_path, ("onnx", "torchscript"), input_size=(32, 64), meta=META,
                           name=name, verify_size=(40, 52))
    assert [r.format for r in results] == ["onnx", "torchscript"]
    for r in results:
        assert r.path.is_file()
        assert r.max_rel_diff < 1e-4, r.as_dict()
        meta = read_export_meta(r.path)
        assert meta["arch"] == name and meta["arch_kwargs"] == kwargs
        assert meta["input_size"] == [32, 64] and meta["depth_range"] == [0.1, 80.0]
        assert meta["kind"] == "completion" and meta["format"] == r.format
    # batch 2 through onnxruntime gives the same depth as PyTorch, sample by sample
    inputs = example_inputs(model, (24, 40), batch=2, seed=5)
    with torch.no_grad():
        expected = DepthOnly(model)(*inputs).numpy()
    got = run_exported(results[0].path, inputs)
    assert got.shape == (2, 1, 24, 40)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_onnx_is_opset_17_with_depth_output(tmp_path):
    import onnx
    path = export_onnx(build("lspkd_student", width=0.125), tmp_path / "s.onnx", (32, 32), META)
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version >= 17
    assert [o.name for o in proto.graph.output] == ["depth"]
    assert [i.name for i in proto.graph.input] == ["rgb", "sparse"]
    with pytest.raises(ValueError, match="opset"):
        export_onnx(build("cdspn"), tmp_path / "c.onnx", (32, 32), META, opset=13)


def test_verify_detects_a_different_model(tmp_path):
    torch.manual_seed(0)
    path = export_onnx(build("lspkd_student", width=0.125), tmp_path / "a.onnx", (32, 32), META)
    torch.manual_seed(1)
    _, rel = verify_export(path, build("lspkd_student", width=0.125).eval(), (32, 32))
    assert rel > 1e-3


def test_export_errors(tmp_path):
    with pytest.raises(ExportError, match="not found"):
        read_export_meta(tmp_path / "missing.onnx")

    class NoDepth(torch.nn.Module):
        def forward(self, rgb):
            return rgb.mean((1, 2, 3))

    with pytest.raises(ExportError, match="only depth networks"):
        export_onnx(NoDepth(), tmp_path / "x.onnx", (8, 8), META)
    class TwoFrames(torch.nn.Module):  # like a pose net
        def forward(self, rgb_a, rgb_b):
            return {"depth": rgb_a - rgb_b}

    with pytest.raises(ExportError, match="only depth networks"):
        export_onnx(TwoFrames(), tmp_path / "p.onnx", (8, 8), META)


def test_cli_export_model_file(tmp_path, capsys):
    model_file = save_model(tmp_path / "student.pt", build("cdspn", scale=32), META)
    rc = main(["export", str(model_file), "--out", str(tmp_path / "out"), "--format", "onnx",
               "--input-size", "32", "48"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert (tmp_path / "out" / "student.onnx").is_file() and not (tmp_path / "out" / "student.pt").exists()
    assert "max |diff| vs PyTorch" in out and "ok" in out
    assert read_export_meta(tmp_path / "out" / "student.onnx")["input_size"] == [32, 48]


def test_cli_export_config(tmp_path, capsys):
    model_file = save_model(tmp_path / "m.pt", build("lspkd_student", width=0.125), META)
    cfg = tmp_path / "export.yaml"
    cfg.write_text(f"model: {model_file}\nout: {tmp_path / 'exp'}\nformat: torchscript\nname: small\n")
    assert main(["export", "--config", str(cfg)]) == 0
    assert (tmp_path / "exp" / "small.torchscript.pt").is_file()
    assert read_export_meta(tmp_path / "exp" / "small.torchscript.pt")["input_size"] == META["input_size"]
    assert main(["export", "--config", str(cfg), "name=other"]) == 0  # an override after an option
    assert (tmp_path / "exp" / "other.torchscript.pt").is_file()
    cfg.write_text(f"model: {model_file}\nformt: onnx\n")
    assert main(["export", "--config", str(cfg)]) == 2
    assert "did you mean 'format'" in capsys.readouterr().err


def test_cli_export_int8_is_calibrated_close_to_fp32_and_runs_in_the_completer(tmp_path, capsys, monkeypatch):
    from lumde_depth.data.synth import render_frames
    from lumde_depth.inference import DepthCompleter

    monkeypatch.setenv("LUMDE_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = build("lspkd_student", width=0.125, guided=True)
    torch.nn.init.normal_(model.head.weight, std=0.05)   # a residual to quantize, not the zero head
    meta = {**META, "input_size": [48, 160]}
    model_file = save_model(tmp_path / "student.pt", model, meta)
    data = tmp_path / "calib"
    # frames of a reduced camera (310x94): smaller than KITTI's 1216x352 crop, calibrated on as a whole
    assert main(["synth", "--out", str(data), "--frames", "2", "--sequences", "1", "--seed", "9", "--workers", "1",
                 "--layout", "kitti_dc", "--set", "val_sequences=1", "--set", "camera_scale=0.25"]) == 0
    rc = main(["export", str(model_file), "--out", str(tmp_path / "out"), "--format", "onnx", "--int8",
               "--calibration", str(data), "--calibration-frames", "2"])
    out = capsys.readouterr().out
    assert rc == 0, out
    int8 = tmp_path / "out" / "student_int8.onnx"
    assert "int8" in out and "calibration frames" in out and int8.is_file()
    assert int8.stat().st_size < 0.5 * (tmp_path / "out" / "student.onnx").stat().st_size   # int8 weights
    got = read_export_meta(int8)
    assert got["quantization"] == {"type": "int8 static QDQ", "ops": ["Conv", "ConvTranspose"]}
    assert got["input_size"] == [48, 160] and got["arch"] == "lspkd_student"
    import onnx
    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # on a frame it was not calibrated on, the int8 depth stays close to the fp32 export's
    frame, K = next(render_frames(1, seed=5))
    depth = {name: DepthCompleter.load(tmp_path / "out" / f"student{suffix}.onnx", backend="onnxruntime",
                                       lidar_align=False).complete(frame.rgb, frame.sparse, K)
             for name, suffix in (("fp32", ""), ("int8", "_int8"))}
    relative = np.abs(depth["int8"] - depth["fp32"]) / np.maximum(depth["fp32"], 1e-3)
    assert np.median(relative) < 0.08 and not np.array_equal(depth["int8"], depth["fp32"])  # random weights: 4 %


def test_int8_calibrates_on_synthetic_frames_by_default():
    from lumde_depth.cli.export import ExportConfig, calibration_frames

    (rgb, sparse, K), = list(calibration_frames(ExportConfig(model="unused.pt", int8=True, calibration_frames=1)))
    assert rgb.shape == (375, 1242, 3) and rgb.dtype == np.uint8
    assert sparse.shape == (375, 1242) and 0.02 < (sparse > 0).mean() < 0.1 and K.shape == (3, 3)


def test_cli_export_int8_needs_the_onnx_export(tmp_path, capsys):
    model_file = save_model(tmp_path / "m.pt", build("cdspn", scale=32), META)
    assert main(["export", str(model_file), "--format", "torchscript", "--int8"]) == 2
    assert "'int8' quantizes the ONNX export" in capsys.readouterr().err


def test_cli_export_needs_a_model(capsys):
    assert main(["export"]) == 2
    assert "give a MODEL (model file, checkpoint or 'shipped') or --config" in capsys.readouterr().err


def test_profile_counts_flops_and_params_exactly():
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 8, 3, padding=1)

        def forward(self, rgb, sparse):
            return {"depth": self.conv(torch.cat((rgb, sparse), 1))[:, :1]}

    tiny = Tiny()
    assert count_params(tiny) == 4 * 8 * 9 + 8
    assert count_flops(tiny, (16, 20)) == 2 * 8 * 4 * 9 * 16 * 20  # a multiply-add counts 2
    lat = measure_latency(tiny, (16, 20), runs=3, warmup=1)
    assert lat["runs"] == 3 and 0 < lat["min_ms"] <= lat["median_ms"]
    # FLOPs grow with the resolution: 4x the pixels, 4x the FLOPs (no padding at these sizes)
    cdspn = build("cdspn", scale=32)
    assert count_flops(cdspn, (64, 128)) == 4 * count_flops(cdspn, (32, 64))


def test_model_specs():
    assert parse_spec("lspkd_student:width=0.125,adapters=true") == ("lspkd_student",
                                                                    {"width": 0.125, "adapters": True})
    assert parse_spec("cdspn") == ("cdspn", {})
    with pytest.raises(ValueError, match="key=value"):
        parse_spec("cdspn:64")
    row = profile_spec("cdspn:scale=32", sizes=[(32, 64)], latency_size=None)
    assert row["paper_params_m"] == 0.4 and abs(row["params_m"] - 0.37) < 0.01
    assert "latency_ms" not in row and row["gflops"]["64x32"] > 0


def test_cli_bench_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "--models", "lspkd_student:width=0.125", "--runs", "1", "--json", str(out),
               "sizes=[[32, 64]]", "latency_size=[32, 32]"])
    assert rc == 0
    report = json.loads(out.read_text())
    (row,) = report["rows"]
    assert row["model"] == "lspkd_student:width=0.125" and row["latency_runs"] == 1
    assert row["paper_params_m"] == 0.66 and row["paper_gflops"] == {"304x228": 1.46}
    assert "| `lspkd_student:width=0.125` |" in capsys.readouterr().out
    assert main(["bench", "--models", "cdpsn"]) == 2
    assert "did you mean 'cdspn'" in capsys.readouterr().err


@pytest.fixture
def toy_run(tmp_path):
    """A 10-step toy training run with checkpoints at steps 5 and 10, model.pt and best.pt."""
    import engine_toy  # noqa: F401  (registers toy_completion)
    from test_engine_train import write_config
    path = write_config(tmp_path, stages=[{"steps": 10, "lr": 0.01}], data__val_split="val",
                        data__max_val_samples=2, checkpoint__every=5)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 0
    return tmp_path / "run"


def test_a_checkpoint_becomes_a_model_file_and_exports_are_named_from_the_run(toy_run, tmp_path, capsys):
    from lumde_depth.engine import checkpoint as ckpt
    from lumde_depth.inference import DepthCompleter
    from lumde_depth.models.io import load_model
    out = tmp_path / "out"
    step5 = toy_run / "checkpoints" / "step_00000005.pt"
    assert main(["export", str(step5), "--format", "model", "--out", str(out)]) == 0
    model, meta = load_model(out / "toy_step5.pt")
    assert meta["steps"] == 5 and meta["input_size"] == [16, 16] and meta["experiment"] == "toy"
    state = ckpt.load_checkpoint(step5)["model"]
    assert all(torch.equal(value, state[key]) for key, value in model.state_dict().items())
    assert main(["export", str(toy_run / "best.pt"), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"toy_step5.pt", "toy_best.onnx", "toy_best.torchscript.pt"}
    # never overwritten silently
    capsys.readouterr()
    assert main(["export", str(toy_run / "best.pt"), "--out", str(out), "--format", "onnx"]) == 2
    assert "toy_best.onnx already exist(s)" in capsys.readouterr().err
    before = (out / "toy_best.onnx").stat().st_mtime_ns
    assert main(["export", str(toy_run / "best.pt"), "--out", str(out), "--format", "onnx", "--force"]) == 0
    assert (out / "toy_best.onnx").stat().st_mtime_ns != before
    # the TorchScript export is not taken for a model file: a message says what to load instead
    with pytest.raises(ValueError, match="is a TorchScript export .* the ONNX export"):
        DepthCompleter.load(out / "toy_best.torchscript.pt", backend="torch")
    assert DepthCompleter.load(out / "toy_step5.pt", backend="torch").input_size == (16, 16)


def test_eval_and_bench_take_several_models_checkpoints_and_shipped(toy_run, tmp_path, capsys):
    step5 = toy_run / "checkpoints" / "step_00000005.pt"
    report = tmp_path / "eval.json"
    assert main(["eval", "--model", str(toy_run / "model.pt"), str(step5), "shipped", "--data",
                 "engine_toy:ToyScenes", "--root", "x", "--max-samples", "2", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    for row in ("| model.pt (toy) |", "| step_00000005.pt (toy, step 5) |", "| shipped (shipped_student) |"):
        assert row in out
    written = json.loads(report.read_text())
    shipped = Path(lumde_depth.__file__).parent / "weights" / "student.pt"
    assert [m["model"] for m in written["models"]] == [str(toy_run / "model.pt"), str(step5), str(shipped)]
    assert all(m["metrics"]["samples"] == 2 for m in written["models"])
    assert main(["eval", "--model", str(tmp_path / "missing.pt"), "--data", "engine_toy:ToyScenes", "--root", "x"]) == 2
    assert "model file not found" in capsys.readouterr().err
    bench = tmp_path / "bench.json"
    assert main(["bench", "--models", str(toy_run / "model.pt"), "shipped", "--runs", "1", "--json", str(bench),
                 "sizes=[[32, 64]]", "latency_size=[32, 32]"]) == 0
    rows = json.loads(bench.read_text())["rows"]
    assert [r["model"] for r in rows] == [str(toy_run / "model.pt"), "shipped"]
    assert rows[0]["params_m"] == pytest.approx(972e-6) and rows[1]["latency_runs"] == 1
