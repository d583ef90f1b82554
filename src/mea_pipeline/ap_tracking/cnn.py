"""The lab's AP-tracking network (``CNN_3d_with_velocity``) as a torch module.

The network classifies one 5 x 5 x 5 cube of the electrical image, axes (time, axis 1, axis 2),
in raw high-passed ADC counts (no normalisation), and returns the probability that the cube's
centre voxel carries an axonal spike. Attribute names and layer shapes are those of the lab's
state_dict (ref-steps-6-11.md 5.13), so its weight files load with ``strict=True``::

    cube (B,1,5,5,5) -> conv1 1->16 (k3, pad 1) -> bn1 -> ReLU -> max-pool 2 (-> 2x2x2)
      -> conv2 16->32 -> bn2 -> ReLU -> conv3 32->64 -> bn3 -> ReLU -> flatten (512)
      -> dropout 0.5 -> fc_cnn 512->64 -> ReLU
    aux (B,2) -> fc_aux 2->4 -> ReLU
    concat (68) -> fc_combined 68->32 -> ReLU -> fc_final 32->1 -> sigmoid

The auxiliary input (the lab's "velocity/direction" side features) is always zeros at inference.
"""

from __future__ import annotations

import torch
from torch import nn

CUBE = 5            # cube side (voxels)
HALF = CUBE // 2    # voxels either side of the centre; also the prediction's zero border
N_AUX = 2           # auxiliary inputs (zeros at inference)
POOLED = 2          # side of the grid after max-pooling a cube


class APTrackingCNN(nn.Module):
    """Cube classifier with the lab's layer names and shapes (104,973 trainable parameters)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv3d(1, 16, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm3d(16)
        self.conv2 = nn.Conv3d(16, 32, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm3d(32)
        self.conv3 = nn.Conv3d(32, 64, kernel_size=3, padding=1)
        self.bn3 = nn.BatchNorm3d(64)
        self.pool = nn.MaxPool3d(kernel_size=2, stride=2)
        self.dropout = nn.Dropout(0.5)
        self.fc_cnn = nn.Linear(64 * POOLED ** 3, 64)
        self.fc_aux = nn.Linear(N_AUX, 4)
        self.fc_combined = nn.Linear(64 + 4, 32)
        self.fc_final = nn.Linear(32, 1)

    def logits(self, cubes: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid score (B, 1); training uses it with a logit loss (numerically stable).

        Parameters
        ----------
        cubes : torch.Tensor
            (B, 1, 5, 5, 5) float32 cubes, axes (time, axis 1, axis 2).
        aux : torch.Tensor
            (B, 2) float32 auxiliary inputs (zeros at inference).
        """
        relu = torch.relu
        x = self.pool(relu(self.bn1(self.conv1(cubes))))
        x = relu(self.bn2(self.conv2(x)))
        x = relu(self.bn3(self.conv3(x)))
        x = relu(self.fc_cnn(self.dropout(torch.flatten(x, 1))))
        side = relu(self.fc_aux(aux))
        x = relu(self.fc_combined(torch.cat([x, side], dim=1)))
        return self.fc_final(x)

    def forward(self, cubes: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        """Probability (B, 1) that each cube's centre voxel carries axonal spike signal."""
        return torch.sigmoid(self.logits(cubes, aux))
