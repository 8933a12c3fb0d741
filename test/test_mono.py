"""LUMDE monocular networks and losses: shapes, cost ratios, warping, self-supervision, distillation."""
import math

import pytest
import torch

from lumde_depth.distill.lumde import LumdeLoss
from lumde_depth.distill.mono_kd import (MonoDistillLoss, critic_loss, generator_loss, gradient_penalty,
                                         pairwise_similarity_loss)
from lumde_depth.distill.selfsup import SelfSupervisedLoss, photometric_error, warp
from lumde_depth.engine.profile import count_flops, count_params
from lumde_depth.models import build
from lumde_depth.models.mono import disp_to_depth, pose_matrix

K = torch.tensor([[[60.0, 0.0, 47.5], [0.0, 60.0, 31.5], [0.0, 0.0, 1.0]]])


def _triplet(batch=2, h=64, w=96):
    torch.manual_seed(0)
    return {"rgb": torch.rand(batch, 3, h, w), "rgb_prev": torch.rand(batch, 3, h, w),
            "rgb_next": torch.rand(batch, 3, h, w), "K": K.repeat(batch, 1, 1)}


ODD_SIZES = [(1, 1), (17, 23), (31, 200), (33, 65), (63, 64), (70, 101)]


@pytest.mark.parametrize("name", ["lumde_teacher", "lumde_student"])
@pytest.mark.parametrize("size", ODD_SIZES)
def test_depth_net_outputs_any_size(name, size):
    """Under 64 px or off the stride the input is padded inside and every output cropped back."""
    h, w = size
    net = build(name).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, h, w))
    assert out["depth"].shape == (1, 1, h, w)
    for s in range(4):
        assert out[f"disp_{s}"].shape == (1, 1, -(-h // 2 ** s), -(-w // 2 ** s))
    assert float(out["depth"].min()) >= 0.1 - 1e-5 and float(out["depth"].max()) <= 100.0 + 1e-3
    assert {"E0", "E4", "D0", "D3"} <= set(out)


@pytest.mark.parametrize("encoder", ["resnet18", "separable"])
@pytest.mark.parametrize("size", ODD_SIZES)
def test_pose_net_any_size(encoder, size):
    pose = build("lumde_pose", encoder=encoder).eval()
    with torch.no_grad():
        T = pose(torch.rand(1, 3, *size), torch.rand(1, 3, *size))
    assert T.shape == (1, 4, 4) and torch.isfinite(T).all()


@pytest.mark.parametrize("name", ["lumde_teacher", "lumde_student"])
def test_depth_net_trains_on_a_tiny_batch(name):
    """Training mode (BatchNorm statistics) with one image under 64 px works too."""
    out = build(name).train()(torch.rand(1, 3, 24, 40))
    out["disp_0"].mean().backward()
    assert out["depth"].shape == (1, 1, 24, 40)


def test_student_cost_within_paper_ratios():
    """LUMDE: the student has at most 22.8 % of the teacher's params and 4.8 % of its compute."""
    teacher, student = build("lumde_teacher"), build("lumde_student")
    assert count_params(student) <= 0.228 * count_params(teacher)
    assert count_flops(student, (192, 640)) <= 0.048 * count_flops(teacher, (192, 640))


def test_disp_to_depth_range():
    d = disp_to_depth(torch.tensor([0.0, 1.0]), 0.1, 100.0)
    assert torch.allclose(d, torch.tensor([100.0, 0.1]))


def test_pose_matrix_is_rigid():
    T = pose_matrix(torch.tensor([[0.0, 0.0, math.pi / 2]]), torch.tensor([[1.0, 2.0, 3.0]]))
    R = T[0, :3, :3]
    assert torch.allclose(R @ R.T, torch.eye(3), atol=1e-6)
    assert torch.allclose(R @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
    assert torch.equal(T[0, :3, 3], torch.tensor([1.0, 2.0, 3.0]))


def test_warp_follows_known_translation():
    """A camera moved 0.5 m sideways at 10 m depth with fx=60 sees the scene shifted 3 pixels."""
    img = torch.rand(1, 1, 64, 96)
    depth = torch.full((1, 1, 64, 96), 10.0)
    src_from_tgt = torch.eye(4)[None].clone()
    src_from_tgt[0, 0, 3] = 0.5
    warped = warp(img, depth, src_from_tgt, K)
    assert torch.allclose(warped[..., 4:-4, 4:-8], img[..., 4:-4, 7:-5], atol=1e-4)


def test_photometric_error_zero_for_identical_and_positive_otherwise():
    a = torch.rand(1, 3, 20, 20)
    assert float(photometric_error(a, a).max()) < 1e-5
    assert float(photometric_error(a, torch.rand(1, 3, 20, 20)).mean()) > 0.05


def test_selfsup_prefers_true_depth_and_pose():
    """Frames rendered from a known motion: the true depth gives a lower loss than a wrong one."""
    torch.manual_seed(1)
    tex = torch.nn.functional.interpolate(torch.rand(1, 3, 16, 24), size=(64, 96), mode="bilinear")
    depth = torch.full((1, 1, 64, 96), 8.0)
    shift = torch.eye(4)[None].clone()
    shift[0, 0, 3] = 0.4
    back = torch.linalg.inv(shift)
    batch = {"rgb": tex, "rgb_prev": warp(tex, depth, back, K), "rgb_next": warp(tex, depth, shift, K), "K": K}
    poses = {"prev": shift, "next": back}
    loss_fn = SelfSupervisedLoss(min_depth=0.1, max_depth=100.0)

    def out_for(d):
        disp = (1 / d - 1 / 100.0) / (1 / 0.1 - 1 / 100.0)
        return {f"disp_{s}": torch.nn.functional.interpolate(disp, scale_factor=0.5 ** s) for s in range(4)}

    right, _ = loss_fn(out_for(depth), batch, poses)
    wrong, _ = loss_fn(out_for(depth * 3), batch, poses)
    assert float(right) < float(wrong)


def test_selfsup_backpropagates_to_depth_and_pose():
    student, pose = build("lumde_student"), build("lumde_pose", encoder="separable")
    batch = _triplet()
    out = student(batch["rgb"])
    poses = {"prev": pose(batch["rgb"], batch["rgb_prev"]), "next": pose(batch["rgb"], batch["rgb_next"])}
    loss, parts = SelfSupervisedLoss()(out, batch, poses)
    loss.backward()
    assert parts["photometric"] > 0 and 0.0 <= parts["automasked"] <= 1.0
    assert all(p.grad is not None for p in student.parameters() if p.requires_grad)
    assert pose.decoder[-1].weight.grad.abs().sum() > 0


def test_distill_terms_vanish_for_identical_networks():
    torch.manual_seed(0)
    net = build("lumde_student").eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, 64, 96))
    loss, parts = MonoDistillLoss()(out, out)
    assert float(loss) < 1e-6 and parts["kd_pixel"] == 0.0
    other = {k: v * 1.5 + 0.1 for k, v in out.items()}
    assert float(MonoDistillLoss()(out, other)[0]) > 1e-3


def test_pairwise_similarity_ignores_channel_count():
    fs, ft = torch.rand(2, 8, 12, 20), torch.rand(2, 32, 12, 20)
    assert pairwise_similarity_loss(fs, ft, (3, 5)).shape == ()


def test_wgan_gp_terms():
    critic = build("lumde_discriminator", grid=(32, 64), patch=16, dim=16, layers=1, heads=2)
    real = torch.rand(2, 1, 40, 80) * 10 + 1
    fake = (torch.rand(2, 1, 40, 80) * 10 + 1).requires_grad_(True)
    loss, parts = critic_loss(critic, real, fake, gp_weight=10.0)
    loss.backward()
    assert fake.grad is None  # the critic step never reaches the student
    assert all(p.grad is not None for p in critic.parameters())
    assert gradient_penalty(critic, real, fake.detach()) >= 0
    g = generator_loss(critic, fake)
    g.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_pose_pairs_go_in_temporal_order():
    """The pose net sees (prev, target) and (target, next), the first inverted: a pose net that only
    predicts the car's usual forward motion (a constant) already gives both source transforms."""
    loss = LumdeLoss()
    head = loss.pose.decoder[-1]
    torch.nn.init.zeros_(head.weight)
    with torch.no_grad():
        head.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, -50.0]))  # x 0.01: points 0.5 m nearer
    poses = loss.source_poses(_triplet())
    assert torch.allclose(poses["next"][:, 2, 3], torch.tensor(-0.5))
    assert torch.allclose(poses["prev"][:, 2, 3], torch.tensor(0.5))
    batch = _triplet()
    assert torch.allclose(poses["prev"], torch.linalg.inv(loss.pose(batch["rgb_prev"], batch["rgb"])))
