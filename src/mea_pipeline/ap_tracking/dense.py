"""CNN prediction over a whole electrical image: the lab's cube batches and the dense equivalent.

Both give, for every voxel at least 2 voxels from each face of the (time, axis 1, axis 2)
volume, the network's probability for the 5 x 5 x 5 cube centred there (auxiliary input zero),
and 0 on the 2-voxel border; for a (50, 65, 65) eimage that is 46 x 61 x 61 = 171,166 cubes.

:func:`predict_cubes` is the lab's method (ref-steps-6-11.md 5.6): every cube cut out with
``Tensor.unfold`` and pushed through the module in batches. :func:`predict_dense` computes the
same numbers for the whole volume at once, exploiting what each layer sees of a cube:

* conv1 runs on the cube zero-padded, so it differs from a convolution of the whole volume only
  at cube-local positions 0 and 4 of an axis (the tap beyond the cube edge reads 0). Max-pooling
  (2, stride 2) of the 5-voxel side keeps local positions {0, 1} and {2, 3}; position 4 is
  dropped. So per axis two conv1 kernels suffice (left tap zeroed for local position 0, full
  otherwise): 8 masked kernels, one convolution of the volume, then bn1.
* the pooled 2 x 2 x 2 x 16 grid of every cube is a max over shifted slices of those 8 maps.
* conv2 and conv3 (3 x 3 x 3 kernels, zero padding) on a 2 x 2 x 2 grid are dense linear maps
  128 -> 256 -> 512; with bn2, bn3 folded in, they and the fully connected layers (the constant
  auxiliary branch folded into fc_combined's bias) become matrix products over all cubes,
  198,688 multiply-adds per cube (:data:`HEAD_MACS_PER_CUBE`), run in chunks of cubes.

Why conv1 and bn1 are not folded like the rest: the lab's weights turn raw ADC counts into
activations of thousands (bn1 divides by running std ~0.2, the network was trained on smaller
inputs), so a float32 rounding in the first layer moves a probability near 0.5 by ~1e-5; two
float32 evaluations of conv1 that merely sum in different orders differ by that much (compared
with float64, the lab's own cube path is off by ~2e-5 on a noisy eimage with a -40 ADC blob).
The dense first stage therefore runs the very arithmetic of the cube path: the same convolution
kernel (the volume goes in as a batch of two overlapping time slabs, so torch dispatches to the
batched kernel the module uses for its cube batches; a batch of one takes another code path)
and the batch-norm function ``BatchNorm3d`` calls in eval mode, with the module's statistics,
so the pooled features equal the module's bit for bit on CPU (a unit test checks it). Only
conv2 onward is reorganised into matrix products that sum in another order. conv2, which reads
those large activations, runs in float64 (about 15 % of the dense time): in float32 its summing
order alone put the result 1.5e-5 from the cube path on an AVX-512 machine (MKL's kernels differ
by CPU; 0.8e-5 on an AVX2 one). conv3 onward stay float32. With the lab's weights the result is
within 0.8e-5 of the cube path on noisy and synthetic unit eimages, the cube path itself being up
to 1.1e-5 from float64; with the packaged default weights, within 2e-6.

Non-finite eimages are rejected (:class:`~mea_pipeline.errors.InputError`) by both: a NaN
would poison neighbouring cubes in the dense form (0 x NaN is NaN in a masked tap) but not in
the cube form, and the lab's units without spikes have an all-NaN eimage, which has no
prediction to make.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from .cnn import CUBE, HALF, N_AUX, POOLED, APTrackingCNN

CHUNK_CUBES = 1024  # cubes per matrix-product chunk: activations stay in cache, matmuls well shaped
CONV1_BLOCK = 4     # conv1 channels per block: a block's maps (~30 MB for a 50 x 65 x 65 eimage) stay in L3
CELLS = POOLED ** 3
# Multiply-adds per cube of the dense head: conv2 (128 -> 256), conv3 (256 -> 512), fc_cnn
# (512 -> 64), fc_combined (64 -> 32), fc_final (32 -> 1).
HEAD_MACS_PER_CUBE = 128 * 256 + 256 * 512 + 512 * 64 + 64 * 32 + 32


def _volume(model: APTrackingCNN, eimage) -> torch.Tensor:
    """The eimage as a float32 tensor on the model's device, after checking shape and values."""
    if model.training:
        raise ValueError("the AP-tracking model is in training mode; call model.eval() (load_model does)")
    array = np.asarray(eimage)
    if array.ndim != 3 or min(array.shape) < CUBE:
        raise InputError(f"eimage_sta: expected a 3-D (time, axis 1, axis 2) array at least "
                         f"{CUBE} voxels per axis, got shape {array.shape}")
    n_bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if n_bad:
        raise InputError(f"eimage_sta: {n_bad} non-finite values (NaN/inf); the CNN needs a finite "
                         f"electrical image (a unit without spikes has an all-NaN eimage: skip it)")
    device = next(model.parameters()).device
    return torch.as_tensor(array, dtype=torch.float32).to(device)


def predict_cubes(model: APTrackingCNN, eimage, batch_size: int = 8192) -> np.ndarray:
    """The lab's inference: all 5 x 5 x 5 cubes cut out and run through the module in batches.

    Parameters
    ----------
    model : APTrackingCNN
        Network in eval mode (as :func:`~mea_pipeline.ap_tracking.model_io.load_model` returns).
    eimage : array_like
        (T, A1, A2) electrical image in raw ADC counts, usually (50, 65, 65); finite.
    batch_size : int
        Cubes per forward pass (does not change the result).

    Returns
    -------
    numpy.ndarray
        (T, A1, A2) float32 probabilities; the 2-voxel border is 0.
    """
    volume = _volume(model, eimage)
    cubes = volume.unfold(0, CUBE, 1).unfold(1, CUBE, 1).unfold(2, CUBE, 1)
    grid = cubes.shape[:3]
    cubes = cubes.reshape(-1, 1, CUBE, CUBE, CUBE)
    probabilities = torch.empty(len(cubes), dtype=torch.float32, device=volume.device)
    with torch.inference_mode():
        for start in range(0, len(cubes), batch_size):
            batch = cubes[start:start + batch_size]
            aux = torch.zeros(len(batch), N_AUX, dtype=torch.float32, device=volume.device)
            probabilities[start:start + len(batch)] = model(batch, aux)[:, 0]
    return _with_border(probabilities.reshape(grid), volume.shape)


def predict_dense(model: APTrackingCNN, eimage) -> np.ndarray:
    """Same result as :func:`predict_cubes` (max difference ~1e-5 or less), computed densely.

    Parameters
    ----------
    model : APTrackingCNN
        Network in eval mode (BatchNorm running statistics are used, bn2 and bn3 folded).
    eimage : array_like
        (T, A1, A2) electrical image in raw ADC counts, usually (50, 65, 65); finite.

    Returns
    -------
    numpy.ndarray
        (T, A1, A2) float32 probabilities; the 2-voxel border is 0.
    """
    volume = _volume(model, eimage)
    with torch.inference_mode():
        features = _pooled_features(model, volume)
        probabilities = _dense_head(features, _head_layers(model))
    grid = tuple(n - 2 * HALF for n in volume.shape)
    return _with_border(probabilities.reshape(grid), volume.shape)


def dense_macs(shape) -> int:
    """Multiply-adds :func:`predict_dense` executes for an eimage of ``shape`` (T, A1, A2).

    The first stage convolves the two time slabs (overlap included) with 8 x 16 kernels of 27
    taps (masked taps are multiplied too); the head does :data:`HEAD_MACS_PER_CUBE` per cube.
    """
    t, a1, a2 = shape
    n_cubes = (t - 2 * HALF) * (a1 - 2 * HALF) * (a2 - 2 * HALF)
    return 2 * _slab_length(t) * a1 * a2 * CELLS * 16 * 27 + n_cubes * HEAD_MACS_PER_CUBE


def _with_border(inner: torch.Tensor, shape) -> np.ndarray:
    out = np.zeros(tuple(shape), dtype=np.float32)
    out[HALF:-HALF, HALF:-HALF, HALF:-HALF] = inner.cpu().numpy()
    return out


def _slab_length(n_frames: int) -> int:
    """Frames per time slab: two slabs whose valid cube starts together cover all ``n_frames - 4``.

    A slab's first frame has a zero-padded conv1 neighbour unless it is the volume's first frame,
    and a cube starting at local frame s pools conv1 frames s..s+3: so the first slab serves
    starts 0..L-5 and the second (ending with the volume) local starts 1..L-5, and
    2 L - 9 >= n_frames - 4 starts need L = ceil((n_frames + 5) / 2) (<= n_frames for n_frames >= 5).
    """
    return (n_frames + 6) // 2


def _conv1_kernels(model: APTrackingCNN) -> tuple[torch.Tensor, torch.Tensor]:
    """conv1's 8 masked variants per channel: (16, 8, 1, 3, 3, 3) kernels and (16, 8) biases.

    The variant index runs over (bit axis 0, bit axis 1, bit axis 2), bit 1 = left tap zeroed.
    """
    variants = []
    for masked in itertools.product((False, True), repeat=3):
        kernel = model.conv1.weight.clone()
        for axis, is_masked in enumerate(masked):
            if is_masked:  # cube-local position 0: the tap before the cube edge reads padding
                kernel.narrow(axis + 2, 0, 1).zero_()
        variants.append(kernel)
    return torch.stack(variants, dim=1), model.conv1.bias[:, None].repeat(1, CELLS)


def _pooled_features(model: APTrackingCNN, volume: torch.Tensor) -> torch.Tensor:
    """(128, n_cubes) pooled bn1/ReLU grid of every cube, rows ordered (pool cell, channel).

    Runs per block of :data:`CONV1_BLOCK` channels, so that a block's 8-variant maps stay in
    the cache through the three pooling passes.
    """
    n_frames, n1, n2 = volume.shape
    length = _slab_length(n_frames)
    slabs = torch.stack([volume[:length], volume[n_frames - length:]]).unsqueeze(1)
    n_starts = n_frames - 2 * HALF
    first = length - 4                       # cube starts served by slab 0; slab 1 serves the rest
    offset = first - (n_frames - length)     # ... from this local start on
    kernels, biases = _conv1_kernels(model)
    bn = model.bn1
    channels = len(kernels)
    pooled = volume.new_empty(2, 2, 2, channels, n_starts, n1 - 2 * HALF, n2 - 2 * HALF)
    along_time = volume.new_empty(2, 2, 2, CONV1_BLOCK, n_starts, n1, n2)
    along_1 = volume.new_empty(2, 2, 2, CONV1_BLOCK, n_starts, n1 - 2 * HALF, n2)
    for c in range(0, channels, CONV1_BLOCK):
        block = slice(c, c + CONV1_BLOCK)
        maps = F.conv3d(slabs, kernels[block].reshape(-1, 1, 3, 3, 3), biases[block].reshape(-1), padding=1)
        # What BatchNorm3d.forward calls in eval mode, with the module's own statistics.
        stats = [t[block].repeat_interleave(CELLS) for t in (bn.running_mean, bn.running_var, bn.weight, bn.bias)]
        maps = F.batch_norm(maps, *stats, training=False, momentum=0.0, eps=bn.eps)
        maps = maps.reshape(2, CONV1_BLOCK, 2, 2, 2, length, n1, n2).permute(0, 2, 3, 4, 1, 5, 6, 7)
        _pool_axis(maps[0], 0, first, out=along_time.narrow(4, 0, first))
        _pool_axis(maps[1].narrow(4, offset, length - offset), 0, n_starts - first,
                   out=along_time.narrow(4, first, n_starts - first))
        _pool_axis(along_time, 1, n1 - 2 * HALF, out=along_1)
        _pool_axis(along_1, 2, n2 - 2 * HALF, out=pooled[:, :, :, block])
    # ReLU commutes with max, so it runs once on the (smaller) pooled grid.
    return torch.relu_(pooled.reshape(CELLS * channels, -1))


def _pool_axis(maps: torch.Tensor, axis: int, n_starts: int, out: torch.Tensor) -> None:
    """Max-pool one axis for ``n_starts`` cube starts; the axis' variant bit becomes its pool cell.

    A cube starting at voxel s (centre s + 2) pools local positions {0, 1}, i.e. voxels s (left
    tap masked) and s + 1 (full kernel), into cell 0 and voxels s + 2, s + 3 (full) into cell 1.
    """
    space = 3 + axis  # spatial dims follow the 3 bit dims and the channel (after select: -1)
    masked, full = maps.select(axis, 1), maps.select(axis, 0)
    torch.maximum(masked.narrow(space, 0, n_starts), full.narrow(space, 1, n_starts), out=out.select(axis, 0))
    torch.maximum(full.narrow(space, 2, n_starts), full.narrow(space, 3, n_starts), out=out.select(axis, 1))


def _grid_conv_matrix(weight: torch.Tensor) -> torch.Tensor:
    """3 x 3 x 3 zero-padded convolution on a 2 x 2 x 2 grid as a (8*in, 8*out) matrix.

    Rows are ordered (position q, input channel), columns (position p, output channel), the
    position index running over (axis 0, axis 1, axis 2) in row-major order.
    """
    n_out, n_in = weight.shape[:2]
    matrix = weight.new_zeros(POOLED, POOLED, POOLED, n_in, POOLED, POOLED, POOLED, n_out)
    for p in itertools.product(range(POOLED), repeat=3):
        for q in itertools.product(range(POOLED), repeat=3):
            tap = tuple(qi - pi + 1 for qi, pi in zip(q, p))
            matrix[q + (slice(None),) + p] = weight[(slice(None), slice(None)) + tap].T
    return matrix.reshape(CELLS * n_in, CELLS * n_out)


def _head_layers(model: APTrackingCNN) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """conv2 onward as float32 (weight (in, out), bias (1, out)) pairs; inputs ordered (pool cell, channel).

    Folding runs in float64 and rounds once, so the folded weights are the nearest float32 to
    the exact products.
    """
    p = {name: value.double() for name, value in model.state_dict().items() if value.is_floating_point()}
    layers = []
    for conv, bn in (("conv2", "bn2"), ("conv3", "bn3")):
        scale = p[f"{bn}.weight"] / torch.sqrt(p[f"{bn}.running_var"] + getattr(model, bn).eps)
        shift = (p[f"{conv}.bias"] - p[f"{bn}.running_mean"]) * scale + p[f"{bn}.bias"]
        layers.append((_grid_conv_matrix(p[f"{conv}.weight"]).T * scale.repeat(CELLS)[:, None], shift.repeat(CELLS)))
    # fc_cnn reads the flattened (channel, cell) order; our rows are (cell, channel).
    fc = p["fc_cnn.weight"]
    layers.append((fc.reshape(len(fc), -1, CELLS).permute(0, 2, 1).reshape(len(fc), -1), p["fc_cnn.bias"]))
    side = torch.relu(p["fc_aux.bias"])                                      # aux = 0
    n_cnn = model.fc_cnn.out_features
    combined = p["fc_combined.weight"]
    layers.append((combined[:, :n_cnn], p["fc_combined.bias"] + combined[:, n_cnn:] @ side))
    layers.append((p["fc_final.weight"], p["fc_final.bias"]))
    return [(w.T.float().contiguous(), b.float()[None, :]) for w, b in layers]


def _dense_head(features: torch.Tensor, layers) -> torch.Tensor:
    """conv2, conv3 and the fully connected layers as chunked matrix products; (n_cubes,) probabilities.

    Cubes are rows (chunk x in @ (in, out) weights): about 10 % faster here than cubes as
    columns; the first chunk is a transposed view of ``features``, which BLAS reads without a copy.
    """
    n = features.shape[1]
    out = features.new_empty(n, 1)
    (first_weight, first_bias), hidden = layers[0], layers[1:-1]
    first_weight, first_bias = first_weight.double(), first_bias.double()
    buffers = [features.new_empty(min(n, CHUNK_CUBES), w.shape[1]) for w, _ in hidden]
    for start in range(0, n, CHUNK_CUBES):
        x = features[:, start:start + CHUNK_CUBES].T
        rows = x.shape[0]
        # conv2 in float64: it sums 128 pooled activations of thousands (see the module's notes),
        # where a float32 product's summing order alone moves a probability by 1e-5.
        x = torch.relu_(torch.addmm(first_bias, x.double(), first_weight).float())
        for (weight, bias), buffer in zip(hidden, buffers):
            x = torch.relu_(torch.addmm(bias, x, weight, out=buffer[:rows]))
        weight, bias = layers[-1]
        torch.sigmoid_(torch.addmm(bias, x, weight, out=out[start:start + rows]))
    return out[:, 0]
