"""Distillation losses: similarities, LSPKD, baselines, black-box, config and factory."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from distill_helpers import TinyCompletion, make_batch
from lumde_depth.config import ConfigError, from_dict, load, to_dict
from lumde_depth.distill import LossConfig, build_loss, global_similarity, local_similarity
from lumde_depth.distill.baselines import ATTTerm, PROBTerm, SPKDTerm, attention_loss, prob_loss, spkd_loss
from lumde_depth.distill.blackbox import BlackBoxLoss
from lumde_depth.distill.lspkd import LSPKDTerm
from lumde_depth.distill.similarity import NEIGHBOURS
from lumde_depth.distill.teachers import ModuleTeacher, TeacherError

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


def naive_local_similarity(feat: np.ndarray, padding: str) -> np.ndarray:
    """Pixel-by-pixel loops over the paper's definition (eq. 6-7)."""
    b, c, h, w = feat.shape
    out = np.zeros((b, 8, h, w))
    for n in range(b):
        for y in range(h):
            for x in range(w):
                f = feat[n, :, y, x]
                f = f / max(np.linalg.norm(f), 1e-12)
                for j, (dy, dx) in enumerate(NEIGHBOURS):
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < h and 0 <= xx < w:
                        g = feat[n, :, yy, xx]
                    elif padding == "replicate":
                        g = feat[n, :, min(max(yy, 0), h - 1), min(max(xx, 0), w - 1)]
                    else:
                        continue
                    out[n, j, y, x] = f @ (g / max(np.linalg.norm(g), 1e-12))
    return out


@pytest.mark.parametrize("padding", ["zero", "replicate"])
def test_local_similarity_matches_naive_reference(padding):
    feat = torch.randn(2, 5, 4, 6, dtype=torch.float64)
    feat[0, :, 1, 2] = 0.0  # an all-zero feature (after ReLU) has similarity 0, not NaN
    got = local_similarity(feat, padding).numpy()
    np.testing.assert_allclose(got, naive_local_similarity(feat.numpy(), padding), atol=1e-12)
    assert got.shape == (2, 8, 4, 6)


def test_local_similarity_of_a_constant_feature_is_one_inside():
    s = local_similarity(torch.ones(1, 3, 5, 5), "zero")
    assert torch.allclose(s[..., 1:-1, 1:-1], torch.ones(1, 8, 3, 3))
    assert s[0, 0, 0, 0] == 0  # up-left neighbour of the corner lies outside: zero padding


def test_global_similarity_matches_dense_cosine():
    feat = torch.randn(2, 4, 3, 5, dtype=torch.float64)
    flat = feat.flatten(2).transpose(1, 2)  # B x HW x C
    ref = F.cosine_similarity(flat[:, :, None, :], flat[:, None, :, :], dim=-1)
    assert torch.allclose(global_similarity(feat), ref, atol=1e-12)


def _saved_bytes(loss_fn, feat: torch.Tensor) -> int:
    """Bytes autograd keeps for the backward of ``loss_fn(feat)`` (what a training step holds)."""
    seen: dict[int, int] = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss_fn(feat)
    return sum(seen.values())


def test_local_similarity_memory_is_linear_in_pixels_global_is_quadratic():
    c, h, w = 8, 48, 64
    fs, ft = torch.randn(1, c, h, w, requires_grad=True), torch.randn(1, 16, h, w)
    fmap = c * h * w * 4  # bytes of the student feature (= bytes of its 8-neighbour similarity)
    local = _saved_bytes(lambda f: F.mse_loss(local_similarity(f), local_similarity(ft)), fs)
    glob = _saved_bytes(lambda f: spkd_loss(f, ft), fs)
    assert local <= 6 * fmap  # O(C*H*W + 8*H*W): no H*W x H*W matrix is kept
    assert glob >= (h * w) ** 2 * 4  # global SPKD keeps at least one H*W x H*W float32 matrix
    assert glob > 100 * local


def _feats(c, seed, h=6, w=7, b=2, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    return {layer: torch.randn(b, c, h, w, generator=g).requires_grad_(requires_grad) for layer in ("E1", "D1")}


def test_lspkd_is_zero_for_identical_features_and_identity_phi():
    term = LSPKDTerm({"E1": 5, "D1": 5}, {"E1": 5, "D1": 5}, layers=("E1", "D1"))
    with torch.no_grad():
        for conv in term.phi.values():
            conv.weight.copy_(torch.eye(5)[:, :, None, None])
            conv.bias.zero_()
    feats = _feats(5, 0)
    parts = term(feats, feats)
    assert parts["lspkd_feat"].item() == pytest.approx(0.0, abs=1e-12)
    assert parts["lspkd_sim"].item() == pytest.approx(0.0, abs=1e-12)


def test_lspkd_matches_formula_and_gradients_reach_student_and_phi():
    student, teacher = _feats(3, 1, requires_grad=True), _feats(6, 2)
    term = LSPKDTerm({"E1": 3, "D1": 3}, {"E1": 6, "D1": 6}, layers=("E1", "D1"), alpha=0.5)
    parts = term(student, teacher)
    expected_feat = expected_sim = 0.0
    for layer in ("E1", "D1"):
        expected_feat += F.mse_loss(term.phi[layer](student[layer]), teacher[layer]).item()
        s_s = naive_local_similarity(student[layer].detach().double().numpy(), "zero")
        s_t = naive_local_similarity(teacher[layer].double().numpy(), "zero")
        expected_sim += ((s_s - s_t) ** 2).mean()
    assert parts["lspkd_feat"].item() == pytest.approx(expected_feat, rel=1e-5)
    assert parts["lspkd_sim"].item() == pytest.approx(0.5 * expected_sim, rel=1e-5)
    sum(parts.values()).backward()
    assert all(student[layer].grad.abs().sum() > 0 for layer in ("E1", "D1"))
    assert all(conv.weight.grad.abs().sum() > 0 for conv in term.phi.values())
    assert teacher["E1"].grad is None


def test_feature_size_mismatch_errors_or_interpolates():
    student, teacher = _feats(3, 1, h=3, w=4), _feats(3, 2, h=6, w=8)
    with pytest.raises(ValueError, match="size_mismatch: interpolate"):
        LSPKDTerm({"E1": 3}, {"E1": 3}, layers=("E1",))(student, teacher)
    parts = LSPKDTerm({"E1": 3}, {"E1": 3}, layers=("E1",), size_mismatch="interpolate")(student, teacher)
    assert torch.isfinite(parts["lspkd_sim"])


def test_missing_feature_names_the_available_ones():
    with pytest.raises(KeyError, match="has no feature 'E3'.*E1"):
        ATTTerm(layers=("E3",))(_feats(3, 0), _feats(3, 1))


def test_attention_transfer_matches_reference():
    fs, ft = torch.randn(2, 3, 4, 5, dtype=torch.float64), torch.randn(2, 7, 4, 5, dtype=torch.float64)
    expected = 0.0
    for n in range(2):
        a_s = (fs[n].numpy() ** 2).sum(0).ravel()
        a_t = (ft[n].numpy() ** 2).sum(0).ravel()
        expected += ((a_s / np.linalg.norm(a_s) - a_t / np.linalg.norm(a_t)) ** 2).sum()
    expected /= 2 * 20
    assert attention_loss(fs, ft).item() == pytest.approx(expected, rel=1e-10)
    assert ATTTerm(layers=("E1",))({"E1": fs}, {"E1": ft})["att"].item() == pytest.approx(expected, rel=1e-10)


def test_prob_matches_reference_and_needs_several_samples():
    fs, ft = torch.randn(4, 3, 2, 3, dtype=torch.float64), torch.randn(4, 6, 2, 3, dtype=torch.float64)

    def probs(x):
        v = x.reshape(len(x), -1).numpy()
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        k = (v @ v.T + 1) / 2
        return k / k.sum(1, keepdims=True)
    ps, pt = probs(fs), probs(ft)
    expected = (pt * np.log((pt + 1e-7) / (ps + 1e-7))).mean()
    assert prob_loss(fs, ft).item() == pytest.approx(expected, rel=1e-10)
    assert prob_loss(fs, fs).item() == pytest.approx(0.0, abs=1e-12)
    assert PROBTerm(layers=("E1",))({"E1": fs[:1]}, {"E1": ft[:1]})["prob"].item() == pytest.approx(0.0, abs=1e-12)


def test_spkd_matches_reference():
    fs, ft = torch.randn(2, 3, 3, 4, dtype=torch.float64), torch.randn(2, 5, 3, 4, dtype=torch.float64)

    def sim(x):
        v = x.flatten(2).numpy()
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        return np.einsum("bci,bcj->bij", v, v)
    expected = ((sim(fs) - sim(ft)) ** 2).mean()
    assert spkd_loss(fs, ft).item() == pytest.approx(expected, rel=1e-10)
    assert SPKDTerm(layers=("E1",))({"E1": fs}, {"E1": ft})["spkd"].item() == pytest.approx(expected, rel=1e-10)


def _sobel_numpy(d: np.ndarray) -> np.ndarray:
    """Normalised Sobel d/dx, d/dy with edge replication, written out by hand."""
    p = np.pad(d, 1, mode="edge")
    h, w = d.shape
    s = lambda dy, dx: p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]  # noqa: E731
    gx = (s(-1, 1) + 2 * s(0, 1) + s(1, 1) - s(-1, -1) - 2 * s(0, -1) - s(1, -1)) / 8
    gy = (s(1, -1) + 2 * s(1, 0) + s(1, 1) - s(-1, -1) - 2 * s(-1, 0) - s(-1, 1)) / 8
    return np.stack([gx, gy])


def test_blackbox_loss_matches_the_formula_by_hand():
    batch = make_batch(b=1, h=6, w=7)
    ds = (1.0 + torch.rand(1, 1, 6, 7, dtype=torch.float64)).requires_grad_(True)
    dt = 1.0 + torch.rand(1, 1, 6, 7, dtype=torch.float64)
    gt = batch["gt"].double()
    total, parts = BlackBoxLoss(0.1, 0.1)({"depth": ds}, {"depth": dt}, {"gt": gt})
    s, t, g = ds.detach()[0, 0].numpy(), dt[0, 0].numpy(), gt[0, 0].numpy()
    mask = g > 0
    l_gt = ((s - g)[mask] ** 2).mean()
    l_dd = ((s - t) ** 2).mean()
    l_gd = ((_sobel_numpy(s) - _sobel_numpy(t)) ** 2).mean()
    assert parts["gt"] == pytest.approx(l_gt, rel=1e-6)
    assert parts["teacher_depth"] == pytest.approx(l_dd, rel=1e-6)
    assert parts["teacher_grad"] == pytest.approx(l_gd, rel=1e-6)
    assert total.item() == pytest.approx(0.8 * l_gt + 0.1 * l_dd + 0.1 * l_gd, rel=1e-10)
    total.backward()
    assert ds.grad.abs().sum() > 0


def test_build_lspkd_with_tiny_models_trains_student_and_phi():
    torch.manual_seed(0)
    student, teacher = TinyCompletion(width=2), TinyCompletion(width=4)
    cfg = {"terms": [{"kind": "lspkd", "layers": ["E1", "E2", "D1"]}, {"kind": "prob", "layers": ["E2"]},
                     {"kind": "att", "layers": ["E1", "D1"]}]}
    loss = build_loss(cfg, student=student, teacher=teacher)
    assert loss.required_features == ("E1", "E2", "D1")
    phi = dict(loss.named_parameters())
    assert phi["terms.0.phi.E1.weight"].shape == (4, 2, 1, 1) and phi["terms.0.phi.E2.weight"].shape == (8, 4, 1, 1)
    batch = make_batch()
    teacher_out = ModuleTeacher(teacher)(batch, features=loss.required_features)
    student_out = student(batch["rgb"], batch["sparse"])
    total, parts = loss(student_out, teacher_out, batch)
    assert set(parts) == {"total", "gt", "teacher_depth", "lspkd_feat", "lspkd_sim", "prob", "att"}
    assert all(isinstance(v, float) for v in parts.values())
    expected = sum(v for k, v in parts.items() if k != "total")
    assert parts["total"] == pytest.approx(expected, rel=1e-5)
    valid = batch["gt"] > 0
    gt_l1 = (student_out["depth"] - batch["gt"]).abs()[valid].mean().item()
    assert parts["gt"] == pytest.approx(gt_l1, rel=1e-5)
    total.backward()
    assert all(p.grad is not None for p in student.parameters())
    assert all(p.grad is None for p in teacher.parameters())
    assert len(list(loss.parameters())) == 6  # weight + bias of phi for E1, E2, D1: what the optimizer adds
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in loss.parameters())


def test_lspkd_needs_models_and_a_teacher_with_features(tmp_path):
    with pytest.raises(ValueError, match="pass student= and teacher="):
        build_loss(LossConfig())
    teacher = TinyCompletion()
    scripted = tmp_path / "t.pt"
    torch.jit.script(teacher).save(str(scripted))
    with pytest.raises(TeacherError, match="depth only.*method: blackbox"):
        build_loss(LossConfig(), student=TinyCompletion(2), teacher=str(scripted))
    loss = build_loss({"method": "blackbox"}, teacher=str(scripted))
    assert isinstance(loss, BlackBoxLoss) and loss.required_features == () and loss.needs_teacher


def test_sparse_target_and_missing_gt_message():
    batch = make_batch()
    del batch["gt"]
    out = {"depth": torch.ones_like(batch["sparse"])}
    with pytest.raises(KeyError, match="target: sparse"):
        build_loss({"method": "blackbox"})(out, out, batch)
    loss = build_loss({"method": "lspkd", "terms": [], "w1": 0.0, "target": "sparse"})
    total, parts = loss(out, None, batch)
    valid = batch["sparse"] > 0
    assert total.item() == pytest.approx((1 - batch["sparse"][valid]).abs().mean().item(), rel=1e-6)


def test_config_is_strict(tmp_path):
    path = tmp_path / "loss.yaml"
    path.write_text("method: lspkd\nterms:\n  - {kind: att, wieght: 2.0}\n")
    with pytest.raises(ConfigError, match="'terms\\[0\\].wieght'.*did you mean 'terms\\[0\\].weight'"):
        load(LossConfig, path)
    bad = {"method: blackbox\nw1: 1.0\n": "'w1' applies to method 'lspkd'",
           "method: lspkd\nlambda1: 0.2\n": "'lambda1' applies to method 'blackbox'",
           "method: blackbox\nlambda1: 0.6\nlambda2: 0.6\n": "> 1",
           "terms:\n  - {kind: att, alpha: 2.0}\n": "'alpha' applies to kind 'lspkd'",
           "terms:\n  - {kind: att}\n  - {kind: att}\n": "lists a kind twice",
           "terms:\n  - {kind: spkd, layers: []}\n": "'layers' is empty",
           "terms:\n  - {kind: lspkd, padding: reflect}\n": "not one of"}
    for text, message in bad.items():
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load(LossConfig, path)
    path.write_text("method: blackbox\n")
    cfg = load(LossConfig, path, ["lambda2=0.3"])
    assert (cfg.lambda1, cfg.lambda2, cfg.terms) == (0.1, 0.3, None)
    cfg = load(LossConfig, None, ["terms=[{kind: lspkd, weight: 0.1}]"])
    assert cfg.terms[0].alpha == 1.0 and cfg.terms[0].padding == "zero" and cfg.terms[0].weight == 0.1
    assert from_dict(LossConfig, to_dict(cfg)) == cfg  # what checkpoints store loads back the same


def test_lspkd_on_the_real_lspkd_networks():
    from lumde_depth.models import build
    torch.manual_seed(0)
    teacher, student = build("lspkd_teacher"), build("lspkd_student", width=0.125)
    loss = build_loss(LossConfig(), student=student, teacher=teacher, probe_size=(32, 32))
    assert loss.required_features == ("E1", "E2", "E3", "D1", "D2", "D3")
    phi = loss.terms[0].phi
    assert phi["E1"].in_channels == 16 and phi["E1"].out_channels == 128  # 2 encoders x 64 x 0.125 -> 2 x 64
    assert phi["D3"].in_channels == 8 and phi["D3"].out_channels == 64
    batch = make_batch(b=2, h=32, w=48)
    teacher_out = ModuleTeacher(teacher)(batch, features=loss.required_features)
    total, parts = loss(student(batch["rgb"], batch["sparse"]), teacher_out, batch)
    assert all(np.isfinite(v) for v in parts.values()) and parts["lspkd_sim"] > 0
    total.backward()
    assert phi["E2"].weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in student.parameters())
