"""Zero-phase Butterworth high-pass written as first-order recursions.

``scipy.signal.sosfiltfilt`` runs a causal IIR filter ``h`` forward and then backward. Away from
the signal ends its output is ``x`` convolved with the symmetric kernel ``g[k] = sum_n h[n]
h[n+|k|]``. With the partial-fraction form ``h[0] = h0``, ``h[n] = sum_i r_i p_i**n`` (n >= 1)
over the distinct poles ``p_i``, the kernel is ``g[k] = sum_i beta_i p_i**|k|`` for ``k != 0``,
so

    y[t] = g0 x[t] + sum_i beta_i (P_i(t) + Q_i(t)),
    P_i(t) = sum_{n>=1} p_i**n x[t-n]      (causal state, P_i(t+1) = p_i (P_i(t) + x[t]))
    Q_i(t) = sum_{n>=1} p_i**n x[t+n]      (anti-causal state).

The filtered signal over any window is therefore the window's raw samples through a small
matrix plus the two states at the window edges, which is what lets the electrical-image STA sum
raw windows and states per unit instead of filtering the whole recording (see :mod:`.sta`).

Only poles with ``Im(p) >= 0`` are kept; a conjugate pair contributes twice the real part.
Complex states are stored as (real, imag) row pairs so that everything stays real float32 in
the streaming code.
"""

from __future__ import annotations

import numpy as np
from scipy import signal


class ZeroPhaseHighpass:
    """Butterworth high-pass applied forward-backward, in parallel (pole) form.

    Parameters
    ----------
    order : int
        Butterworth order of the single pass.
    cutoff_hz : float
        Cutoff frequency.
    fs : float
        Sampling rate in Hz.

    Attributes
    ----------
    sos : ndarray
        Second-order sections, as ``scipy.signal.butter(..., output='sos')`` returns them.
    padlen : int
        Odd-extension length ``sosfiltfilt`` uses by default.
    poles, weights, beta : ndarray
        Upper-half-plane poles, their multiplicity in the real output (2 for a conjugate pair,
        1 for a real pole) and the kernel coefficients ``beta_i``.
    g0 : float
        Centre tap of the zero-phase kernel.
    """

    def __init__(self, order: int, cutoff_hz: float, fs: float):
        self.sos = signal.butter(order, cutoff_hz, "high", fs=fs, output="sos")
        n_sec = len(self.sos)
        # scipy's default padlen for sosfiltfilt.
        trivial = min((self.sos[:, 2] == 0).sum(), (self.sos[:, 5] == 0).sum())
        self.padlen = int(3 * (2 * n_sec + 1 - trivial))
        self.zi = signal.sosfilt_zi(self.sos)
        b, a = signal.sos2tf(self.sos)
        r_all, p_all, k_direct = signal.residuez(b, a)
        h0 = float(np.real(np.sum(k_direct[:1]) + np.sum(r_all)))
        cross = (r_all[None, :] * p_all[:, None] * p_all[None, :]) / (1 - p_all[:, None] * p_all[None, :])
        beta_all = r_all * (h0 + cross.sum(axis=1))
        self.g0 = float(np.real(h0 * h0 + (r_all[:, None] * cross).sum()))
        keep = p_all.imag >= -1e-12 * np.abs(p_all)
        self.poles = p_all[keep]
        self.residues = r_all[keep]
        self.beta = beta_all[keep]
        self.weights = np.where(np.abs(self.poles.imag) > 1e-12 * np.abs(self.poles), 2.0, 1.0)

    @property
    def n_states(self) -> int:
        """Number of real state rows per direction (2 per kept pole)."""
        return 2 * len(self.poles)

    def kernel(self, n: int) -> np.ndarray:
        """Taps ``g[0..n-1]`` of the symmetric zero-phase kernel."""
        k = np.arange(1, n)
        taps = (self.weights * np.real(self.beta * self.poles ** k[:, None])).sum(axis=1)
        return np.concatenate([[self.g0], taps])

    def settle_samples(self, rel_tol: float = 1e-8) -> int:
        """Samples after which the kernel tail is below ``rel_tol * g0`` in total.

        Truncating the anti-causal state this far from a window changes the filtered window by
        at most ``rel_tol * g0 * max|x|``.
        """
        rho = float(np.abs(self.poles).max())
        scale = float((self.weights * np.abs(self.beta)).sum()) / (1 - rho)
        return int(np.ceil(np.log(rel_tol * abs(self.g0) / scale) / np.log(rho))) + 1

    def powers(self, exponents) -> np.ndarray:
        """``p**n`` for every kept pole and exponent, as real rows (n_states, len(exponents)).

        Row pair ``2i, 2i+1`` holds the real and imaginary parts for pole ``i``: how a sample
        ``n`` steps away enters the stored state.
        """
        return _split(self.poles[:, None] ** np.asarray(exponents))

    def grid_weights(self, block: int) -> np.ndarray:
        """Per-block input weights of the state recursions, shape (2 * n_states, block).

        Rows ``[:n_states]`` give the increment of P across a block (``P((k+1)B) = p**B P(kB) +
        sum_j p**(B-j) x[kB+j]``), rows ``[n_states:]`` that of Q (``Q(kB-1) = p**B Q((k+1)B-1) +
        sum_j p**(j+1) x[kB+j]``).
        """
        j = np.arange(block)
        return np.concatenate([self.powers(block - j), self.powers(j + 1)])

    def step_matrix(self, n: int) -> np.ndarray:
        """Real matrix multiplying stored states by ``p**n`` (block diagonal, n_states square)."""
        return _complex_blocks(self.poles**n)

    def start_state(self, head: np.ndarray) -> np.ndarray:
        """P at t = 0 as sosfiltfilt sees it, stored as real rows (n_states, C).

        sosfiltfilt prepends an odd extension of ``padlen`` samples and starts the forward pass
        in the steady state of its first value, which equals an infinite constant prefix.

        Parameters
        ----------
        head : ndarray
            The first ``padlen + 1`` samples, shape (padlen + 1, C).
        """
        n = self.padlen
        ext = 2 * head[0] - head[1 : n + 1]  # x[-k] for k = 1..n
        k = np.arange(1, n + 1)
        p = self.poles[:, None]
        state = (p[..., None] ** k[:, None] * ext[None]).sum(axis=1)
        state = state + (p ** (n + 1) / (1 - p)) * ext[-1][None]
        return _split(state)

    def window_response(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """How the edge states of a window enter the filtered window.

        Returns
        -------
        from_p, from_q : ndarray
            Shape (length, n_states): filtered window = Toeplitz(kernel) @ raw window +
            ``from_p @ P(t0)`` + ``from_q @ Q(t0 + length - 1)``, states as real rows.
        """
        lag = np.arange(length)
        coef = self.weights * self.beta * self.poles ** lag[:, None]
        from_p = np.empty((length, self.n_states))
        from_p[:, 0::2] = coef.real
        from_p[:, 1::2] = -coef.imag
        return from_p, from_p[::-1].copy()

    def tail(self, x: np.ndarray, p_start: np.ndarray) -> np.ndarray:
        """Exact sosfiltfilt output over the last samples of the signal.

        Parameters
        ----------
        x : ndarray
            float64 samples ``[tau, T)``, shape (n, C), n > padlen.
        p_start : ndarray
            P at ``tau`` as real rows (n_states, C).
        """
        n = self.padlen
        ext = np.concatenate([x, 2 * x[-1] - x[-2 : -n - 2 : -1]])
        fwd = signal.sosfilt(self.sos, ext, axis=0)
        # Zero-input part of the forward pass: what the samples before tau still contribute,
        # sum_i w_i Re(r_i p_i**m P_i(tau)), as one real matrix product on the (re, im) rows.
        m = np.arange(len(ext))
        coef = self.weights * self.residues * self.poles ** m[:, None]
        resp = np.empty((len(ext), self.n_states))
        resp[:, 0::2] = coef.real
        resp[:, 1::2] = -coef.imag
        fwd += resp @ p_start
        zi = self.zi[:, :, None] * fwd[-1][None, None, :]
        back = signal.sosfilt(self.sos, fwd[::-1], axis=0, zi=zi)[0]
        return back[::-1][: len(x)]


def _complex_blocks(c: np.ndarray) -> np.ndarray:
    """Block-diagonal real matrix applying complex factors ``c`` to (real, imag) row pairs."""
    m = np.zeros((2 * len(c), 2 * len(c)))
    for i, v in enumerate(c):
        m[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = [[v.real, -v.imag], [v.imag, v.real]]
    return m


def _split(c: np.ndarray) -> np.ndarray:
    """Interleave real and imaginary parts of (n, ...) complex rows into (2n, ...) real rows."""
    out = np.empty((2 * c.shape[0],) + c.shape[1:])
    out[0::2] = c.real
    out[1::2] = c.imag
    return out
