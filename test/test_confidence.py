"""Per-pixel confidence of completed depth (lumde_depth.inference.confidence)."""
import numpy as np
import pytest
import torch
from scipy import ndimage

from lumde_depth.inference.confidence import CONFIDENCE_SCALE, depth_confidence, log_depth_spread


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, np.float32))[None, None]


def test_log_depth_spread_is_the_window_range_among_valid_pixels():
    rng = np.random.default_rng(0)
    log = rng.normal(size=(30, 41)).astype(np.float32)
    valid = rng.random((30, 41)) > 0.3
    got = log_depth_spread(_t(log), _t(valid) > 0)[0, 0].numpy()
    hi = ndimage.maximum_filter(np.where(valid, log, -np.inf), size=5, mode="constant", cval=-np.inf)
    lo = ndimage.minimum_filter(np.where(valid, log, np.inf), size=5, mode="constant", cval=np.inf)
    np.testing.assert_allclose(got[valid], (hi - lo)[valid], rtol=1e-6)


def test_confidence_is_high_on_flat_agreeing_depth_and_falls_at_edges_and_corrections():
    depth = np.full((40, 60), 10.0, np.float32)
    depth[:, 30:] = 20.0                      # a depth edge at column 30
    depth[0:4, 0:4] = 0.0                     # no depth there
    network = depth.copy()
    network[30:, 5:15] *= 1.1                 # the alignment moved the network by 10 % there
    conf = depth_confidence(_t(depth), _t(network))[0, 0].numpy()
    assert conf.dtype == np.float32 and conf.min() >= 0.0 and conf.max() <= 1.0
    assert np.all(conf[0:4, 0:4] == 0.0)                          # no depth, no confidence
    assert conf[20, 10] == pytest.approx(1.0)                     # flat, network and LiDAR agree
    assert conf[20, 29] == pytest.approx(np.exp(-np.log(2.0) / CONFIDENCE_SCALE), rel=1e-4)   # at the edge
    assert conf[35, 10] == pytest.approx(np.exp(-np.log(1.1) / CONFIDENCE_SCALE), rel=1e-4)   # corrected
    edge_only = depth_confidence(_t(depth))[0, 0].numpy()        # classical fills: the edge cue alone
    assert edge_only[35, 10] == pytest.approx(1.0) and edge_only[20, 29] == conf[20, 29]
