"""Depth-completion architectures: parameter counts against the papers, shapes, outputs, blocks."""
import pytest
import torch
import torch.nn.functional as F

from lumde_depth.engine.profile import count_params
from lumde_depth.models import build, names
from lumde_depth.models.blocks import BasicBlock, UnifiedBlock, pad_to_multiple
from lumde_depth.models.cdspn import KERNELS, min_pool_sparse, propagate
from lumde_depth.models.io import load_model, save_model
from lumde_depth.models.lspkd import feature_channels

torch.set_num_threads(1)


def _inputs(b, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    rgb = torch.rand(b, 3, h, w, generator=g)
    sparse = (torch.rand(b, 1, h, w, generator=g) < 0.1) * (1 + 50 * torch.rand(b, 1, h, w, generator=g))
    return rgb, sparse


def test_registered_names():
    assert {"lspkd_teacher", "lspkd_student", "cdspn"} <= set(names())


@pytest.mark.parametrize("name, kwargs, paper_m", [
    ("lspkd_teacher", {}, 51.77),                                   # LSPKD table 1/2
    ("lspkd_student", {"width": 0.5, "adapters": True}, 8.56),      # LSPKD table 1 (KITTI)
    ("lspkd_student", {"width": 0.125, "adapters": True}, 0.66),    # LSPKD table 2 (NYUv2)
    ("cdspn", {"scale": 32}, 0.4),                                  # CDSPN table 4.3
    ("cdspn", {"scale": 64}, 1.2),
    ("cdspn", {"scale": 96}, 2.6),
])
def test_parameter_counts_match_papers(name, kwargs, paper_m):
    params = count_params(build(name, **kwargs)) / 1e6
    assert abs(params - paper_m) / paper_m < 0.10, f"{name}{kwargs}: {params:.3f}M vs paper {paper_m}M"


def test_teacher_is_exactly_the_papers_size():
    # two ResNet34 encoders + 6-layer deconv decoder: 51.78M against the paper's 51.77M
    assert abs(count_params(build("lspkd_teacher")) / 1e6 - 51.77) < 0.05


def test_student_adapters_map_to_teacher_widths_and_are_optional():
    plain, with_phi = build("lspkd_student", width=0.5), build("lspkd_student", width=0.5, adapters=True)
    assert len(plain.adapters) == 0
    teacher = feature_channels(1.0)
    for name, conv in with_phi.adapters.items():
        assert (conv.in_channels, conv.out_channels) == (with_phi.feature_channels[name], teacher[name])
    assert count_params(with_phi) > count_params(plain)


@pytest.mark.parametrize("name, kwargs", [("lspkd_student", {"width": 0.125}), ("lspkd_teacher", {})])
@pytest.mark.parametrize("size", [(64, 64), (50, 70)])
def test_lspkd_forward_shapes_and_features(name, kwargs, size):
    model = build(name, **kwargs).eval()
    rgb, sparse = _inputs(2, *size)
    with torch.no_grad():
        out = model(rgb, sparse)
    assert out["depth"].shape == (2, 1, *size)
    assert torch.isfinite(out["depth"]).all() and (out["depth"] > 0).all()
    ph, pw = (-(-size[0] // 32) * 32, -(-size[1] // 32) * 32)
    for i in range(5):
        e, d = out[f"E{i}"], out[f"D{i}"]
        assert e.shape == (2, model.feature_channels[f"E{i}"], ph >> i, pw >> i)
        assert d.shape == (2, model.feature_channels[f"D{i}"], ph >> (4 - i), pw >> (4 - i))


def test_lspkd_width_scales_channels():
    teacher = build("lspkd_teacher")
    student = build("lspkd_student", width=0.5)
    assert student.feature_channels["E4"] * 2 == teacher.feature_channels["E4"] == 1024
    assert student.feature_channels["D0"] * 2 == teacher.feature_channels["D0"] == 256


@pytest.mark.parametrize("scale", [32, 64])
@pytest.mark.parametrize("size", [(64, 96), (45, 70)])
def test_cdspn_forward_outputs(scale, size):
    model = build("cdspn", scale=scale).eval()
    rgb, sparse = _inputs(2, *size)
    with torch.no_grad():
        out = model(rgb, sparse)
    for key in ("depth", "coarse_depth", "rgb_depth", "dd_depth"):
        assert out[key].shape == (2, 1, *size), key
        assert torch.isfinite(out[key]).all()
    assert (out["depth"] >= 0).all() and (out["rgb_depth"] > 0).all()
    conf = out["confidence"]
    assert conf.shape == (2, 2, *size)
    torch.testing.assert_close(conf.sum(1), torch.ones(2, *size))
    # eq. 3.1: confidence-softmax fusion of the two branches
    fused = conf[:, :1] * out["rgb_depth"] + conf[:, 1:] * out["dd_depth"]
    torch.testing.assert_close(out["coarse_depth"], fused)
    # the refinement changes the coarse depth (it is not a pass-through)
    assert (out["depth"] - out["coarse_depth"]).abs().max() > 1e-4


def test_cdspn_rejects_unknown_scale():
    with pytest.raises(ValueError, match="32, 64 or 96"):
        build("cdspn", scale=48)


def test_models_train_end_to_end():
    """Every parameter used by forward gets a gradient (nothing is disconnected)."""
    for model in (build("cdspn", scale=32), build("lspkd_student", width=0.125)):
        model.train()
        rgb, sparse = _inputs(2, 32, 48)
        model(rgb, sparse)["depth"].mean().backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        assert not missing, missing


def _propagate_reference(depth, depth0, weights, a_ii, kernel, dilation):
    """The same step by im2col (F.unfold) and a reduction: sum_j A_ji D_j + A_ii D0."""
    b, _, h, w = depth.shape
    cols = F.unfold(depth, kernel, dilation=dilation, padding=dilation * (kernel // 2)).view(b, -1, h, w)
    return (cols * weights).sum(1, keepdim=True) + a_ii * depth0


@pytest.mark.parametrize("kernel, dilation", [(3, 1), (5, 2), (7, 1)])
def test_propagate_matches_reference(kernel, dilation):
    g = torch.Generator().manual_seed(3)
    depth, depth0 = torch.rand(2, 1, 9, 11, generator=g), torch.rand(2, 1, 9, 11, generator=g)
    weights = torch.randn(2, kernel * kernel, 9, 11, generator=g)
    weights[:, kernel * kernel // 2] = 0
    a_ii = torch.rand(2, 1, 9, 11, generator=g)
    torch.testing.assert_close(propagate(depth, depth0, weights, a_ii, kernel, dilation),
                               _propagate_reference(depth, depth0, weights, a_ii, kernel, dilation))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.trace: still the export path here
def test_propagate_traced_matches_eager():
    """Exports trace the one-hot convolution form; it computes the same step as the eager slices."""
    g = torch.Generator().manual_seed(4)
    depth, depth0, a_ii = (torch.rand(1, 1, 12, 10, generator=g) for _ in range(3))
    weights = torch.randn(1, 25, 12, 10, generator=g)
    weights[:, 12] = 0
    step = torch.jit.trace(lambda d, d0, wts, a: propagate(d, d0, wts, a, 5, 2), (depth, depth0, weights, a_ii))
    assert "conv" in str(step.graph)  # the traced graph uses the one-hot convolution
    torch.testing.assert_close(step(depth, depth0, weights, a_ii), propagate(depth, depth0, weights, a_ii, 5, 2))


def test_affinity_head_normalisation():
    head = build("cdspn", scale=32).refine.head_full.eval()
    with torch.no_grad():
        conf, mask, affinities = head(torch.randn(1, head.conv[0].in_channels, 8, 8))
    torch.testing.assert_close(conf.sum(1), torch.ones(1, 8, 8))
    assert ((mask > 0) & (mask < 1)).all()
    assert len(affinities) == len(KERNELS)
    for kernel, (weights, a_ii) in zip(KERNELS, affinities):
        assert weights.shape[1] == kernel * kernel
        assert (weights[:, kernel * kernel // 2] == 0).all()
        torch.testing.assert_close(weights.abs().sum(1), torch.ones(1, 8, 8))
        torch.testing.assert_close(a_ii[:, 0], 1 - weights.sum(1))


def test_min_pool_sparse_keeps_nearest_valid_point():
    sparse = torch.tensor([[[[0.0, 5.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0]]]])
    assert min_pool_sparse(sparse).tolist() == [[[[3.0, 0.0]]]]


def test_blocks():
    block = BasicBlock(8, 16, stride=2)
    assert block(torch.rand(1, 8, 10, 12)).shape == (1, 16, 5, 6)
    up = UnifiedBlock(8, 4, up=True)
    assert up(torch.rand(1, 8, 5, 6)).shape == (1, 4, 10, 12)
    same = UnifiedBlock(8, 8)
    assert same.residual and not UnifiedBlock(8, 8, stride=2).residual
    x = torch.rand(1, 1, 5, 7)
    padded = pad_to_multiple(x, 4)
    assert padded.shape == (1, 1, 8, 8) and padded[..., 5:, :].abs().sum() == 0
    torch.testing.assert_close(padded[..., :5, :7], x)
    assert pad_to_multiple(x, 4, "replicate")[..., 7, 7] == x[..., 4, 6]


def test_model_file_roundtrip(tmp_path):
    model = build("cdspn", scale=32).eval()
    save_model(tmp_path / "m.pt", model, {"input_size": [32, 48], "depth_range": [0.1, 80.0], "kind": "completion"})
    loaded, meta = load_model(tmp_path / "m.pt")
    rgb, sparse = _inputs(1, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded(rgb, sparse)["depth"], model(rgb, sparse)["depth"])
    assert meta["kind"] == "completion"


def test_models_on_a_real_kitti_frame(shared_data):
    """A real KITTI image and its projected scan (bottom-centre crop, 96 x 200: road, cars, kerbs)."""
    import numpy as np
    from PIL import Image
    drive = shared_data / "kitti_raw_tiny" / "2011_09_26" / "2011_09_26_drive_0023_sync"
    image = np.asarray(Image.open(drive / "image_02" / "data" / "0000000003.png").convert("RGB"))
    scan = np.load(drive / "proj_depth" / "velodyne" / "image_02" / "0000000003.npz")["velodyne_depth"]
    h, w = image.shape[:2]
    window = (slice(h - 96, h), slice(w // 2 - 100, w // 2 + 100))
    rgb = torch.from_numpy(image[window].copy()).permute(2, 0, 1)[None].float() / 255
    sparse = torch.from_numpy(scan[window].astype("float32"))[None, None]
    assert (sparse > 0).float().mean() > 0.01  # the crop holds LiDAR points
    for model in (build("cdspn", scale=32).eval(), build("lspkd_student", width=0.125).eval()):
        with torch.no_grad():
            depth = model(rgb, sparse)["depth"]
        assert depth.shape == (1, 1, 96, 200) and torch.isfinite(depth).all() and (depth >= 0).all()


@pytest.mark.slow
def test_teacher_exports(tmp_path):
    from lumde_depth.engine.export import export_model
    results = export_model(build("lspkd_teacher"), tmp_path, input_size=(64, 64), name="teacher",
                           verify_size=(40, 72))
    assert all(r.max_rel_diff < 1e-4 for r in results), [r.as_dict() for r in results]
