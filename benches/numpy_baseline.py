#!/usr/bin/env python3
"""The numpy code a researcher would write instead of spikesweep, for the
side-by-side table of `make bench`: N Hodgkin-Huxley neurons coupled by the
original question's kinetic synapse, many trials vectorised as arrays of
shape (trials, neurons), forward Euler for every variable, additive white
noise sigma*sqrt(dt)*N(0,1) on V, on-line spike counting (upward 0 mV
crossings), float64, one thread: I = 10, Vr = 20, w = 1, E = strength *
(all-to-all), dt = 0.01 ms, sigma = 2.

Prints one line: neuron_steps_per_s=<median of --repeats runs>.
Usage: numpy_baseline.py [--trials 10000] [--neurons 2] [--ms 100] [--repeats 3] [--normalize]
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

G_NA, G_K, G_L = 120.0, 36.0, 0.3
E_NA, E_K, E_L = 50.0, -77.0, -54.387
V_REV, W, I_INJ, DT, SIGMA, STRENGTH = 20.0, 1.0, 10.0, 0.01, 2.0, 0.1


def rates(v):
    x = 0.1 * v + 4.0
    y = 0.1 * v + 5.5
    u = v + 65.0
    return (x / (1.0 - np.exp(-x)), 4.0 * np.exp(u * (-1.0 / 18.0)),
            0.07 * np.exp(u * (-1.0 / 20.0)), 1.0 / (1.0 + np.exp(-0.1 * v - 3.5)),
            0.1 * y / (1.0 - np.exp(-y)), 0.125 * np.exp(u * (-1.0 / 80.0)))


def simulate(trials, neurons, steps, seed, normalize=False, chunk_elems=1 << 20):
    v0 = np.where(np.arange(neurons) % 2 == 0, -65.0, -70.0)
    am, bm, ah, bh, an, bn = rates(v0)
    a_s = 5.0 / (1.0 + np.exp(-(v0 + 3.0) / 8.0))
    tile = lambda x: np.tile(x, (trials, 1))  # noqa: E731
    v, m, h, n, s = tile(v0), tile(am / (am + bm)), tile(ah / (ah + bh)), tile(an / (an + bn)), tile(a_s / (a_s + 1))
    e = STRENGTH * (np.ones((neurons, neurons)) - np.eye(neurons))
    if normalize:  # each neuron receives STRENGTH in total, as network.normalize
        e /= max(neurons - 1, 1)
    et = e.T.copy()
    rng = np.random.default_rng(seed)
    count = np.zeros((trials, neurons), dtype=np.int64)
    scale = SIGMA * np.sqrt(DT)
    # Noise drawn in blocks of steps (one generator call per block, not
    # per step), as a careful numpy user would.
    block = max(1, min(steps, chunk_elems // (neurons * trials)))
    done = 0
    while done < steps:
        k = min(block, steps - done)
        noise = rng.standard_normal((k, trials, neurons))
        noise *= scale
        for j in range(k):
            am, bm, ah, bh, an, bn = rates(v)
            a_s = 5.0 / (1.0 + np.exp((v + 3.0) * (-1.0 / 8.0)))
            i_syn = (V_REV - v) / W * (s @ et)
            m2, n2 = m * m, n * n
            dv = I_INJ - G_NA * (m2 * m) * h * (v - E_NA) - G_K * (n2 * n2) * (v - E_K) - G_L * (v - E_L) + i_syn
            v_new = v + DT * dv + noise[j]
            m = m + DT * (am * (1 - m) - bm * m)
            h = h + DT * (ah * (1 - h) - bh * h)
            n = n + DT * (an * (1 - n) - bn * n)
            s = s + DT * (a_s * (1 - s) - s)
            count += (v < 0.0) & (v_new >= 0.0)
            v = v_new
        done += k
    return count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10000)
    ap.add_argument("--neurons", type=int, default=2)
    ap.add_argument("--ms", type=float, default=100.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--normalize", action="store_true")
    a = ap.parse_args()
    steps = int(round(a.ms / DT))
    walls = []
    for r in range(a.repeats):
        t0 = time.perf_counter()
        simulate(a.trials, a.neurons, steps, r + 1, a.normalize)
        walls.append(time.perf_counter() - t0)
    print(f"neuron_steps_per_s={a.trials * a.neurons * steps / float(np.median(walls)):.4e}")


if __name__ == "__main__":
    main()
