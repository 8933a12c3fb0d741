"""DepthCompleter: backends agree, resizing is exact about intrinsics, sparse depth is never interpolated."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lumde_depth.geometry import resize_image
from lumde_depth.inference import DepthCompleter, completer as completer_mod
from lumde_depth.inference.classical import ip_basic, nearest_fill
from lumde_depth.models.io import save_model

import engine_toy  # noqa: F401  (registers the small "toy_completion" test network)


@pytest.fixture
def model_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMDE_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    from lumde_depth.models import build
    model = build("toy_completion", width=4)
    return save_model(tmp_path / "tiny.pt", model,
                      {"input_size": [32, 64], "depth_range": [0.5, 80.0], "kind": "completion"})


def _frame(h: int = 48, w: int = 96, seed: int = 0):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    sparse = np.zeros((h, w), np.float32)
    mask = rng.random((h, w)) < 0.08
    sparse[mask] = rng.uniform(2.0, 60.0, mask.sum())
    K = np.array([[70.0, 0, w / 2 - 0.3], [0, 72.0, h / 2 + 0.7], [0, 0, 1]])
    return rgb, sparse, K


def test_classical_fills_everything_and_keeps_the_nearest_surface():
    sparse = np.zeros((60, 80), np.float32)
    sparse[30:, ::3] = 20.0          # background wall
    sparse[40:, 30:50:3] = 5.0       # an obstacle in front of it
    dense = ip_basic(sparse)
    assert dense.shape == sparse.shape and dense.dtype == np.float32
    assert (dense > 0).all()                          # extrapolated to the top rows too
    assert np.allclose(dense[50, 36:45], 5.0, atol=0.3)   # obstacle keeps its depth, not a blend
    assert np.allclose(dense[50, 5:20], 20.0, atol=0.3)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        ip_basic(sparse[None])


def test_classical_backend_needs_no_model():
    rgb, sparse, K = _frame()
    completer = DepthCompleter.load(None, backend="classical")
    out = completer.complete(rgb, sparse, K)
    assert completer.backend_name == "classical"
    np.testing.assert_array_equal(out, ip_basic(sparse, max_depth=100.0))


def test_nearest_fill_takes_the_nearest_point_and_is_a_backend():
    sparse = np.zeros((50, 70), np.float32)
    sparse[10, 10], sparse[40, 60], sparse[10, 60] = 5.0, 250.0, 30.0
    dense = nearest_fill(sparse)
    rows, cols = np.mgrid[0:50, 0:70]
    d = np.stack([np.hypot(rows - r, cols - c) for r, c in ((10, 10), (40, 60), (10, 60))])
    expected = np.array([5.0, 250.0, 30.0], np.float32)[np.argmin(d, axis=0)]
    unique = np.sort(d, axis=0)[1] - np.sort(d, axis=0)[0] > 1e-9   # pixels equally near two points: either
    np.testing.assert_array_equal(dense[unique], expected[unique])
    assert not nearest_fill(np.zeros((4, 4), np.float32)).any()
    rgb = np.zeros((50, 70, 3), np.uint8)
    completer = DepthCompleter.load(backend="nearest")
    assert completer.backend_name == "nearest"
    np.testing.assert_array_equal(completer.complete(rgb, sparse, np.eye(3) * 50 + np.diag([0, 0, -49])), dense)
    with pytest.raises(ValueError, match="unknown backend 'nearst'.*'nearest'"):
        DepthCompleter.load(backend="nearst")


def test_ip_basic_keeps_points_beyond_100_m():
    sparse = np.zeros((60, 80), np.float32)
    sparse[30:, ::3] = 240.0
    sparse[45:, 30:50:3] = 60.0
    dense = ip_basic(sparse)
    assert np.allclose(dense[35, 5:20], 240.0, rtol=1e-3) and np.allclose(dense[55, 36:45], 60.0, atol=0.3)


def test_shipped_monocular_student_is_small_and_trained():
    from lumde_depth.data.synth import render_frames
    from lumde_depth.engine.metrics import mono_metrics
    from lumde_depth.inference import DEFAULT_MONO_MODEL
    from lumde_depth.models import build

    assert DEFAULT_MONO_MODEL.stat().st_size < 4e6
    completer = DepthCompleter.load(DEFAULT_MONO_MODEL, backend="torch")
    assert completer.kind == "monocular" and completer.input_size == (94, 310) and not completer.lidar_align
    frame, K = next(render_frames(1, seed=20261207))   # a scene it never saw
    depth = completer.complete(frame.rgb, None, K)
    assert depth.shape == frame.groundtruth.shape and np.isfinite(depth).all()
    torch.manual_seed(0)
    floor = DepthCompleter(completer_mod.TorchBackend(build("lumde_student", min_depth=0.1, max_depth=100.0),
                                                      (94, 310), monocular=True), completer.meta)
    trained, untrained = (mono_metrics(d, frame.groundtruth)["d1"]
                          for d in (depth, floor.complete(frame.rgb, None, K)))
    assert trained > untrained + 0.1, (trained, untrained)


def test_missing_shipped_student_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(completer_mod, "DEFAULT_MODEL", tmp_path / "weights" / "student.pt")
    with pytest.raises(FileNotFoundError, match="shipped default student"):
        DepthCompleter.load(None, backend="torch")


def test_native_size_equals_the_model(model_file):
    """At the network's own input size the completer is exactly model(rgb / 255, sparse)."""
    rgb, sparse, K = _frame(32, 64)
    completer = DepthCompleter.load(model_file, backend="torch", device="cpu", lidar_align=False)
    out = completer.complete(rgb, sparse, K)
    from lumde_depth.models.io import load_model
    model, _ = load_model(model_file)
    with torch.no_grad():
        ref = model(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0,
                    torch.from_numpy(sparse)[None, None])["depth"][0, 0].numpy()
    np.testing.assert_allclose(out, np.clip(ref, 0.5, 80.0), rtol=1e-5, atol=1e-5)
    assert set(completer.last_timings) == {"preprocess", "inference", "postprocess"}


@pytest.mark.parametrize("fit", ["stretch", "crop"])
def test_lidar_align_meets_the_points_inside_the_window(model_file, fit):
    rgb, sparse, K = _frame()
    raw = DepthCompleter.load(model_file, backend="torch", fit=fit, lidar_align=False).complete(rgb, sparse, K)
    aligned_c = DepthCompleter.load(model_file, backend="torch", fit=fit)
    aligned = aligned_c.complete(rgb, sparse, K)
    x0, y0, w, h = aligned_c.window(*sparse.shape)
    inside = np.zeros_like(sparse, bool)
    inside[y0:y0 + h, x0:x0 + w] = True
    points = (sparse > 0) & inside
    assert np.abs(raw[points] - sparse[points]).mean() > 1.0      # the toy network alone is far off
    # random depths at 8 % of the pixels: no smooth field meets them all, but it moves halfway there
    assert np.abs(aligned[points] - sparse[points]).mean() < 0.6 * np.abs(raw[points] - sparse[points]).mean()
    assert (aligned[~inside] == 0).all() and (aligned[inside] >= 0.5).all()
    empty = np.zeros_like(sparse)                                   # no point: nothing to align to
    np.testing.assert_array_equal(aligned_c.complete(rgb, empty, K),
                                  DepthCompleter.load(model_file, backend="torch", fit=fit,
                                                      lidar_align=False).complete(rgb, empty, K))


def test_torch_and_onnxruntime_agree_and_onnx_file_loads_directly(model_file, tmp_path):
    rgb, sparse, K = _frame()
    torch_c = DepthCompleter.load(model_file, backend="torch", device="cpu")
    onnx_c = DepthCompleter.load(model_file, backend="onnxruntime")
    a, b = torch_c.complete(rgb, sparse, K), onnx_c.complete(rgb, sparse, K)
    assert a.shape == (48, 96) and a.dtype == np.float32 and np.all(a >= 0.5)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    exported = sorted((tmp_path / "cache" / "onnx").glob("*.onnx"))
    assert len(exported) == 1 and "32x64" in exported[0].name
    direct = DepthCompleter.load(exported[0], backend="auto")
    assert direct.backend_name == "onnxruntime" and direct.input_size == (32, 64)
    assert direct.backend.any_size   # the export's height and width are dynamic: fit="aspect" can resize it
    np.testing.assert_allclose(direct.complete(rgb, sparse, K), b, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="ONNX model"):
        DepthCompleter.load(exported[0], backend="torch")


def test_auto_backend_on_cpu_times_torch_and_onnxruntime(model_file):
    completer = DepthCompleter.load(model_file, device="cpu")
    timings = completer.meta["auto_timings_ms"]
    assert set(timings) == {"torch", "onnxruntime"} and all(t > 0 for t in timings.values())
    assert completer.backend_name == min(timings, key=timings.get)


def test_buffers_are_reused_between_frames(model_file):
    completer = DepthCompleter.load(model_file, backend="onnxruntime")
    rgb, sparse, K = _frame()
    pointers = (completer.backend.rgb.ctypes.data, completer.backend.sparse.ctypes.data)
    completer.complete(rgb, sparse, K)
    out1 = completer.backend.run()
    completer.complete(*_frame(seed=1))
    assert completer.backend.run().ctypes.data == out1.ctypes.data
    assert (completer.backend.rgb.ctypes.data, completer.backend.sparse.ctypes.data) == pointers


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_a_batch_of_cameras_is_one_network_run_and_equals_frame_by_frame(model_file, backend, monkeypatch):
    """complete_batch: the cameras of one rig (different image sizes) in one run, each result as complete gives it."""
    completer = DepthCompleter.load(model_file, backend=backend, device="cpu", fit="crop")
    frames = [_frame(seed=0), _frame(60, 80, seed=1), _frame(48, 96, seed=2)]
    single = [completer.complete_with_confidence(*frame) for frame in frames]
    runs = []
    run_batch = completer.backend.run_batch
    monkeypatch.setattr(completer.backend, "run_batch", lambda n: runs.append(n) or run_batch(n))
    batch = completer.complete_batch(frames, confidence=True)
    assert runs == [3] and completer.last_batch == 3
    for (depth, conf), (d1, c1), (rgb, _s, _K) in zip(batch, single, frames):
        assert depth.shape == rgb.shape[:2]
        np.testing.assert_allclose(depth, d1, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(conf, c1, rtol=1e-4, atol=1e-4)
    depth, conf = completer.complete_batch(frames[:1])[0]   # a smaller batch after a larger one
    assert conf is None
    np.testing.assert_allclose(depth, single[0][0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(completer.complete(*frames[1]), single[1][0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", ["torch", "classical"])
def test_a_batch_on_a_frame_pool_finishes_its_frames_side_by_side_with_the_same_bits(model_file, backend,
                                                                                       monkeypatch):
    """complete_batch(pool=...): each frame's preparation and refinement run on the pool's threads; the depth and
    confidence are bit for bit those of the batch run in turn."""
    import threading

    from lumde_depth.inference import FramePool
    completer = DepthCompleter.load(model_file, backend=backend, device="cpu", fit="crop")
    frames = [_frame(seed=0), _frame(60, 80, seed=1), _frame(48, 96, seed=2), _frame(seed=3)]
    in_turn = completer.complete_batch(frames, confidence=True)
    threads = set()
    for name in ("_finish", "_complete"):
        method = getattr(completer, name)
        monkeypatch.setattr(completer, name, lambda *a, method=method, **k: threads.add(
            threading.current_thread().name) or method(*a, **k))
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with FramePool(2) as pool:
            pooled = completer.complete_batch(frames, confidence=True, pool=pool)
    finally:
        torch.set_num_threads(previous)
    assert threads and all(name.startswith("lumde_frame") for name in threads), threads   # not the caller's
    for (depth, conf), (d1, c1) in zip(pooled, in_turn):
        np.testing.assert_array_equal(depth, d1)
        np.testing.assert_array_equal(conf, c1)
    # then: each frame handed on as soon as it is finished, in its thread; its results are returned
    with FramePool(2) as pool:
        handed = completer.complete_batch(frames, confidence=True, pool=pool,
                                          then=lambda item, depth, conf: (item, threading.current_thread().name,
                                                                          depth, conf))
    assert [item for item, *_ in handed] == list(range(len(frames)))
    assert all(name.startswith("lumde_frame") for _item, name, _d, _c in handed)
    for (_item, _name, depth, conf), (d1, c1) in zip(handed, in_turn):
        np.testing.assert_array_equal(depth, d1)
        np.testing.assert_array_equal(conf, c1)


def test_batch_on_an_export_with_a_fixed_batch_runs_frame_by_frame(model_file, tmp_path):
    from lumde_depth.inference.backends import OnnxBackend
    completer = DepthCompleter.load(model_file, backend="onnxruntime")
    import onnx
    path = sorted((tmp_path / "cache" / "onnx").glob("*.onnx"))[0]
    graph = onnx.load(path)
    for value in [*graph.graph.input, *graph.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_value = 1
    fixed = tmp_path / "fixed.onnx"
    onnx.save(graph, fixed)
    backend = OnnxBackend(fixed, (32, 64))
    assert not backend.batchable and completer.backend.batchable
    frames = [_frame(seed=3), _frame(seed=4)]
    expected = [d for d, _ in completer.complete_batch(frames)]
    completer.backend = backend
    for depth, want in zip(completer.complete_batch(frames), expected):
        np.testing.assert_allclose(depth[0], want, rtol=1e-5, atol=1e-5)


def test_aspect_fit_runs_the_network_at_the_image_aspect_ratio(model_file):
    """fit="aspect" (the default): an image whose aspect ratio is the model's (within 10 %) runs at the model's
    input size; another at the model's pixel count in the image's own aspect ratio (multiples of 8); stretch
    always runs at the model's size; a fixed-size ONNX export cannot change size and stretches, and so do
    monocular models (their depth cue is the image row)."""
    completer = DepthCompleter.load(model_file, backend="torch", device="cpu")   # model input 32x64
    assert completer.fit == "aspect"
    assert completer.network_size(64, 128) == (32, 64) and completer.network_size(60, 128) == (32, 64)
    assert completer.network_size(96, 96) == (48, 48) and completer.network_size(120, 90) == (56, 40)
    rgb, sparse, K = _frame(96, 96)
    inputs = completer.network_inputs(rgb, sparse, K)
    assert inputs["rgb"].shape == (1, 3, 48, 48) and (inputs["sparse"] > 0).any()
    np.testing.assert_allclose(completer.network_K(K, 96, 96)[0, 0], K[0, 0] * 0.5)
    depth = completer.complete(rgb, sparse, K)
    assert depth.shape == (96, 96) and completer.backend.input_size == (48, 48)
    assert completer.complete(*_frame(32, 64)).shape == (32, 64) and completer.backend.input_size == (32, 64)
    batch = completer.complete_batch([_frame(96, 96), _frame(90, 100, seed=1)])
    assert [d.shape for d, _ in batch] == [(96, 96), (90, 100)] and completer.backend.input_size == (48, 48)
    stretch = DepthCompleter.load(model_file, backend="torch", device="cpu", fit="stretch")
    assert stretch.network_size(96, 96) == (32, 64)
    fixed_backend = completer_mod.TorchBackend(completer.backend.model, (32, 64), False)
    fixed_backend.any_size = False   # as an ONNX export with a fixed height and width
    fixed = DepthCompleter(fixed_backend, completer.meta)
    assert fixed.network_size(96, 96) == (32, 64)
    monocular = DepthCompleter(completer.backend, {**completer.meta, "kind": "monocular"})
    assert monocular.fit == "aspect" and monocular.network_size(96, 96) == (32, 64)
    with pytest.raises(ValueError, match="unknown fit"):
        DepthCompleter.load(model_file, backend="torch", fit="squash")


@pytest.mark.parametrize("fit", ["stretch", "crop"])
def test_the_network_image_is_the_geometry_resize_normalised_within_one_grey_level(model_file, fit):
    """The completer resizes with torch's uint8 antialiased bilinear (4x faster than PIL); its input stays
    within one grey level of geometry.resize_image's, normalised with the model's mean and std, also for a
    read-only image (as a message's buffer is) and a cropped window."""
    completer = DepthCompleter.load(model_file, backend="torch", fit=fit)
    completer.meta.update(rgb_mean=[0.4, 0.5, 0.6], rgb_std=[0.2, 0.25, 0.3])
    completer = DepthCompleter(completer.backend, completer.meta, fit=fit)
    rgb, sparse, K = _frame(75, 250, seed=5)
    rgb.flags.writeable = False
    x0, y0, win_w, win_h = completer.window(75, 250)
    window = rgb[y0:y0 + win_h, x0:x0 + win_w]
    expected = resize_image(np.ascontiguousarray(window), K, (32, 64))[0].transpose(2, 0, 1) / 255.0
    got = completer.network_inputs(rgb, sparse, K)["rgb"][0] * np.reshape([0.2, 0.25, 0.3], (3, 1, 1)) + \
        np.reshape([0.4, 0.5, 0.6], (3, 1, 1))
    assert np.abs(got - expected).max() <= 1.0 / 255.0 + 1e-5
    assert np.abs(got - expected).mean() < 0.1 / 255.0


@pytest.mark.parametrize("fit", ["stretch", "crop"])
def test_network_inputs_are_what_complete_feeds_the_network(model_file, fit):
    completer = DepthCompleter.load(model_file, backend="torch", fit=fit)
    rgb, sparse, K = _frame(seed=3)
    inputs = completer.network_inputs(rgb, sparse, K)
    assert inputs["rgb"].shape == (1, 3, 32, 64) and inputs["sparse"].shape == (1, 1, 32, 64)
    completer.complete(*_frame(seed=4))          # other buffers in between: network_inputs returned copies
    assert not np.array_equal(completer.backend.rgb, inputs["rgb"])
    completer.complete(rgb, sparse, K)
    np.testing.assert_array_equal(completer.backend.rgb, inputs["rgb"])
    np.testing.assert_array_equal(completer.backend.sparse, inputs["sparse"])
    assert (inputs["sparse"] > 0).any()
    with pytest.raises(ValueError, match="no network"):
        DepthCompleter.load(backend="classical").network_inputs(rgb, sparse, K)


@pytest.mark.parametrize("fit", ["aspect", "stretch", "crop"])
def test_sparse_downsampling_keeps_valid_points_at_network_K(model_file, fit):
    """Each LiDAR point lands in the network pixel where network_K projects it; nearest wins; no blends."""
    h, w = 96, 256   # network 32x64: stretch scales by 1/3 x 1/4, crop keeps a 96x192 window, aspect runs at 24x72
    completer = DepthCompleter.load(model_file, backend="torch", device="cpu", fit=fit)
    K = np.array([[200.0, 0, 127.3], [0, 190.0, 50.2], [0, 0, 1]])
    rng = np.random.default_rng(3)
    pts = np.stack([rng.uniform(-6, 6, 400), rng.uniform(-1, 2, 400), rng.uniform(3, 40, 400)], 1)
    uv = pts @ K.T
    u, v = uv[:, 0] / uv[:, 2], uv[:, 1] / uv[:, 2]
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    pts, u, v = pts[inside], np.floor(u[inside]).astype(int), np.floor(v[inside]).astype(int)
    sparse = np.zeros((h, w), np.float32)
    order = np.argsort(-pts[:, 2])
    sparse[v[order], u[order]] = pts[order, 2]
    completer.complete(np.zeros((h, w, 3), np.uint8), sparse, K)
    buf = completer.backend.sparse[0, 0]

    Kn = completer.network_K(K, h, w)
    x0, y0, win_w, win_h = completer.window(h, w)
    # centre of each full-resolution pixel (integer coordinates, ROS/OpenCV convention) mapped into
    # the network image through network_K; the network pixel holding it is floor(x + 0.5)
    un = (u - K[0, 2]) / K[0, 0] * Kn[0, 0] + Kn[0, 2] + 0.5
    vn = (v - K[1, 2]) / K[1, 1] * Kn[1, 1] + Kn[1, 2] + 0.5
    keep = (u >= x0) & (u < x0 + win_w) & (v >= y0) & (v < y0 + win_h)
    expected = np.zeros_like(buf)
    cells = np.floor(vn[keep]).astype(int), np.floor(un[keep]).astype(int)
    depth = sparse[v[keep], u[keep]]
    o = np.argsort(-depth)
    expected[cells[0][o], cells[1][o]] = depth[o]
    np.testing.assert_array_equal(buf, expected)
    assert set(np.unique(buf[buf > 0])) <= set(np.unique(sparse[sparse > 0]))
    if fit == "crop":
        assert (x0, y0, win_w, win_h) == (32, 0, 192, 96)
        out = completer.complete(np.zeros((h, w, 3), np.uint8), sparse, K)
        assert np.all(out[:, :32] == 0) and np.all(out[:, 32:224] > 0) and np.all(out[:, 224:] == 0)


def test_bad_inputs_name_the_problem(model_file):
    completer = DepthCompleter.load(model_file, backend="torch", device="cpu")
    rgb, sparse, K = _frame()
    with pytest.raises(ValueError, match="uint8"):
        completer.complete(rgb.astype(np.float32), sparse, K)
    with pytest.raises(ValueError, match="differs from the image"):
        completer.complete(rgb, sparse[:-1], K)
    with pytest.raises(ValueError, match="3x3"):
        completer.complete(rgb, sparse, np.eye(4))
    with pytest.raises(ValueError, match="sparse depth is required"):
        completer.complete(rgb, None, K)
    with pytest.raises(ValueError, match="unknown backend"):
        DepthCompleter.load(model_file, backend="tensorrt")
    with pytest.raises(FileNotFoundError, match="not found"):
        DepthCompleter.load(model_file.with_name("nope.pt"))


def test_monocular_model_needs_no_sparse(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMDE_CACHE", str(tmp_path / "cache"))
    from lumde_depth.models import build
    torch.manual_seed(0)
    path = save_model(tmp_path / "mono.pt", build("lumde_student", width=0.5),
                      {"input_size": [32, 64], "depth_range": [0.1, 100.0]})
    rgb, _, K = _frame()
    torch_c = DepthCompleter.load(path, backend="torch", device="cpu")
    onnx_c = DepthCompleter.load(path, backend="onnxruntime")
    assert torch_c.kind == onnx_c.kind == "monocular"
    a, b = torch_c.complete(rgb, None, K), onnx_c.complete(rgb, None, K)
    assert a.shape == (48, 96) and np.all(a > 0)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_classical_leaves_no_hole_where_no_point_reached():
    """Columns without any LiDAR point (image borders) get the nearest completed depth, not 0."""
    sparse = np.zeros((40, 120), np.float32)
    sparse[20:, 10:60:3] = 7.5
    dense = ip_basic(sparse, max_depth=90.0)
    assert (dense > 0).all() and (dense < 90.0).all()
    np.testing.assert_array_equal(dense[:, 110:], np.repeat(dense[:, 110:111], 10, axis=1))  # nearest copy
    assert not ip_basic(np.zeros((8, 8), np.float32)).any()


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_full_resolution_output_keeps_a_depth_edge_sharp(backend, tmp_path, monkeypatch):
    """A wall at 20 m behind a box at 6 m, KITTI-sized, LiDAR rows on both. The network (an untrained
    guided student: its depth is its classical prefill, a clean step at half resolution) runs at
    621x188; upsampled bilinearly its depth has two flying pixels a row between the surfaces along the
    box's edge; DepthCompleter's upsampling has none, and with the LiDAR alignment and snap the output
    meets the points on each side at full resolution."""
    monkeypatch.setenv("LUMDE_CACHE", str(tmp_path / "cache"))
    from lumde_depth.models import build
    model = save_model(tmp_path / "guided.pt", build("lspkd_student", width=0.125, guided=True),
                       {"input_size": [188, 621], "depth_range": [0.5, 90.0], "kind": "completion"})
    height, width, edge = 375, 1242, 701
    depth = np.full((height, width), 20.0, np.float32)
    depth[150:, edge:] = 6.0
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[...] = (110, 115, 120)
    rgb[150:, edge:] = (160, 40, 30)
    sparse = np.zeros_like(depth)
    sparse[120::3, ::2] = depth[120::3, ::2] * np.random.default_rng(0).uniform(0.99, 1.01, (85, 621))
    K = np.array([[721.5, 0.0, 609.6], [0.0, 721.5, 172.9], [0.0, 0.0, 1.0]])
    network_only = DepthCompleter.load(model, backend=backend, device="cpu", lidar_align=False)
    upsampled = network_only.complete(rgb, sparse, K)
    network = torch.from_numpy(network_only.backend.run())[None, None]        # the same frame's network depth
    bilinear = torch.nn.functional.interpolate(network, size=(height, width), mode="bilinear",
                                               align_corners=False)[0, 0].numpy()
    band = np.s_[200:370, edge - 6:edge + 6]
    flying = lambda d: int(((d[band] > 7.0) & (d[band] < 17.0)).sum())       # noqa: E731
    assert flying(bilinear) >= 2 * 170
    assert flying(upsampled) == 0
    out = DepthCompleter.load(model, backend=backend, device="cpu").complete(rgb, sparse, K)
    rows = np.s_[200:370]
    assert np.median(np.abs(out[rows, edge - 40:edge - 3] - 20.0)) < 0.1      # both surfaces at the LiDAR's depth
    assert np.median(np.abs(out[rows, edge + 3:edge + 40] - 6.0)) < 0.03
