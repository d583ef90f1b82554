"""AP-tracking CNN: loading weight files strictly, and dense inference equal to the lab's cube-by-cube method."""

from pathlib import Path

import numpy as np
import pytest
import torch

from mea_pipeline.ap_tracking import model_io
from mea_pipeline.ap_tracking.cnn import APTrackingCNN
from mea_pipeline.ap_tracking.dense import predict_cubes, predict_dense
from mea_pipeline.ap_tracking.model_io import ModelError, default_model_path, load_model, resolve_device
from mea_pipeline.errors import InputError

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
LAB_WEIGHTS = SHARED / "reference" / "ap_cnn" / "CNN_3d_with_velocity_model_from_all_process.pth"
TOLERANCE = 1e-5   # PRODUCT.md section 8: dense outputs equal the cube-by-cube ones within 1e-5


def lab_weights() -> Path:
    if not LAB_WEIGHTS.is_file():
        pytest.skip(f"the lab's weights are not here ({LAB_WEIGHTS})")
    return LAB_WEIGHTS


def noisy_eimage(seed=0, shape=(50, 65, 65)) -> np.ndarray:
    """Raw-count-like volume: N(0, 5) noise with a -40 ADC blob, the case where float32 rounding shows most."""
    rng = np.random.default_rng(seed)
    image = rng.normal(0, 5, shape).astype(np.float32)
    image[10:20, 20:30, 20:30] -= 40
    return image


def module_on_cut_cubes(model, eimage, centres) -> np.ndarray:
    """Independent reference: each cube cut out with NumPy and run through the nn.Module itself."""
    cubes = np.stack([eimage[t - 2:t + 3, a - 2:a + 3, b - 2:b + 3] for t, a, b in centres])[:, None]
    with torch.inference_mode():
        out = model(torch.from_numpy(np.ascontiguousarray(cubes)), torch.zeros(len(cubes), 2))
    return out[:, 0].numpy()


def random_centres(shape, n, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(2, s - 2, n) for s in shape], axis=1)


@pytest.fixture(scope="module")
def lab_model():
    return load_model(lab_weights(), "cpu")


@pytest.fixture(scope="module")
def default_model():
    return load_model(None, "cpu")


def test_lab_weights_load_strictly_once_per_process(lab_model):
    state = torch.load(LAB_WEIGHTS, weights_only=True)
    assert isinstance(lab_model, APTrackingCNN) and not lab_model.training
    assert set(lab_model.state_dict()) == set(state)
    for key, value in state.items():
        assert torch.equal(lab_model.state_dict()[key], value), key
    assert sum(p.numel() for p in lab_model.parameters()) == 104_973
    assert load_model(LAB_WEIGHTS, "cpu") is lab_model


def test_default_weights_are_a_plain_state_dict_of_the_same_architecture(default_model):
    state = torch.load(default_model_path(), weights_only=True)
    APTrackingCNN().load_state_dict(state, strict=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert default_model_path().with_name("ap_cnn_default.validation.json").is_file()


def state_with(**changes) -> dict:
    state = APTrackingCNN().state_dict()
    state.update(changes)
    return state


@pytest.mark.parametrize("content, expected", [
    (b"PK\x03\x04 this is not a zip archive", "not a readable torch weight file"),
    ([torch.zeros(3)], "holds a list, expected a plain state_dict"),
    ({"conv1.weight": torch.zeros(8, 1, 3, 3, 3)}, "missing keys"),
    (state_with(**{"conv1.weight": torch.zeros(8, 1, 3, 3, 3)}),
     "wrong shapes conv1.weight (8, 1, 3, 3, 3) instead of (16, 1, 3, 3, 3)"),
    (state_with(**{"fc1.weight": torch.zeros(2, 2)}), "unexpected keys fc1.weight"),
])
def test_bad_weight_files_are_one_model_error_naming_the_file(tmp_path, content, expected):
    path = tmp_path / "weights.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(ModelError) as caught:
        load_model(path, "cpu")
    message = str(caught.value)
    assert isinstance(caught.value, InputError)
    assert "\n" not in message and str(path) in message and expected in message


def test_missing_weight_file_says_what_to_give(tmp_path):
    with pytest.raises(ModelError, match="not found.*CNN_3d_with_velocity"):
        load_model(tmp_path / "nope.pth")


def test_devices():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(" CPU ").type == "cpu"
    with pytest.raises(InputError, match="unknown value 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA"):
            resolve_device("cuda")


def test_fingerprint_follows_the_content(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(APTrackingCNN().state_dict(), path)
    first = model_io.model_fingerprint(path)
    torch.save(APTrackingCNN().state_dict(), path)   # new random weights
    assert model_io.model_fingerprint(path) != first
    assert model_io.model_fingerprint(None) == model_io.model_fingerprint(default_model_path())


def test_dense_equals_the_lab_cube_batches_on_a_real_shaped_eimage(lab_model):
    eimage = noisy_eimage()
    dense = predict_dense(lab_model, eimage)
    cubes = predict_cubes(lab_model, eimage)
    assert np.abs(dense - cubes).max() <= TOLERANCE
    centres = random_centres(eimage.shape, 3000)
    reference = module_on_cut_cubes(lab_model, eimage, centres)
    assert np.abs(cubes[tuple(centres.T)] - reference).max() <= 1e-6   # the unfold batches are the module
    assert dense[:2].max() == dense[-2:].max() == dense[:, :2].max() == dense[:, :, -2:].max() == 0
    assert (dense > 0.5).sum() > 1000 and (dense < 0.05).sum() > 100_000   # the blob lights up, the noise not


@pytest.mark.parametrize("which", ["lab", "default"])
def test_dense_equals_the_module_on_individually_cut_cubes(which, request):
    model = request.getfixturevalue(f"{which}_model")
    eimage = noisy_eimage(2)
    centres = random_centres(eimage.shape, 4000, 2)
    # Half of the positions around the blob, where probabilities are neither 0 nor 1.
    centres[:2000] = random_centres((24, 36, 36), 2000, 3) + [2, 12, 12]
    probabilities = module_on_cut_cubes(model, eimage, centres)
    assert np.abs(predict_dense(model, eimage)[tuple(centres.T)] - probabilities).max() <= TOLERANCE
    assert ((probabilities > 0.01) & (probabilities < 0.99)).sum() >= 10   # not only saturated 0s and 1s


@pytest.mark.parametrize("shape", [(5, 5, 5), (6, 7, 8), (11, 9, 6), (7, 12, 5), (50, 9, 10)])
def test_dense_handles_any_volume_of_at_least_one_cube(default_model, shape):
    eimage = noisy_eimage(4, shape)
    np.testing.assert_allclose(predict_dense(default_model, eimage), predict_cubes(default_model, eimage),
                               rtol=0, atol=TOLERANCE)


def test_unusable_eimages_and_a_training_model_are_refused(default_model):
    image = noisy_eimage(5, (10, 10, 10))
    image[3, 4, 5] = np.nan
    with pytest.raises(InputError, match="1 non-finite"):
        predict_dense(default_model, image)
    with pytest.raises(InputError, match="shape"):
        predict_dense(default_model, np.zeros((4, 10, 10), np.float32))
    with pytest.raises(ValueError, match="training mode"):
        predict_dense(APTrackingCNN().train(), np.zeros((10, 10, 10), np.float32))


@pytest.mark.parametrize("threads", [1, 2])
def test_first_stage_is_the_modules_arithmetic_bit_for_bit(threads):
    """conv1, bn1, ReLU and max-pooling of every cube, computed densely, equal the module's exactly.

    This is what keeps the dense output within 1e-5 of the cube path for the lab's weights: their
    first layer amplifies float32 rounding so much that any other summation order differs by ~2e-5.
    """
    from mea_pipeline.ap_tracking.dense import _pooled_features

    torch.manual_seed(0)
    model = APTrackingCNN()
    model.bn1.running_mean.uniform_(-0.3, 0.3)
    model.bn1.running_var.uniform_(0.01, 0.1)
    model.eval()
    eimage = noisy_eimage(6, (13, 17, 15))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            dense = _pooled_features(model, torch.from_numpy(eimage))
            cubes = torch.from_numpy(eimage).unfold(0, 5, 1).unfold(1, 5, 1).unfold(2, 5, 1).reshape(-1, 1, 5, 5, 5)
            pooled = model.pool(torch.relu(model.bn1(model.conv1(cubes))))        # (n, 16, 2, 2, 2)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(dense, pooled.reshape(len(pooled), 16, 8).permute(2, 1, 0).reshape(128, -1))
