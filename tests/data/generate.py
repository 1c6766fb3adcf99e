#!/usr/bin/env python3
"""Regenerate the golden reference data in tests/data/ (numpy + scipy only).

    python tests/data/generate.py               # overwrite tests/data/reference_*.json
    python tests/data/generate.py --check       # recompute, compare with the committed files
    python tests/data/generate.py --out DIR     # write the files into DIR instead
    python tests/data/generate.py --only pair   # one file: pair, fi or models (or its file name)
    python tests/data/generate.py --jobs 1      # worker processes (default 2: the machine is shared)

Every number is an ODE solution from scipy's solve_ivp (LSODA, or Radau where
a key says so) with a spike = upward crossing of 0 mV, located by solve_ivp's
event root finding on the solver's dense output. Units throughout: mV, ms,
uA/cm^2 (currents), mS/cm^2 (conductances), uF/cm^2 (C); rates in Hz.

--check exits 1 and lists every spike time (or other ms/mV quantity) that
differs by more than 1e-5, every rate that differs by more than 1e-4 Hz, and
every count or structure difference; numbers the committed file rounds (to
d decimals) are compared with the interval their rounding stands for. The
library versions and run time recorded in the files are not compared.
"""

import argparse
import json
import math
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

HERE = Path(__file__).resolve().parent
FILES = {"pair": "reference_pair.json", "fi": "reference_fi.json", "models": "reference_models.json"}
# Spike times and every other non-rate number (ms, mV, gates). 1e-5 is the data's
# own accuracy (tests/data/README.md): numpy 2.3.5 -> 2.4.6 alone moved the pair's
# end state by 2.0e-6 mV, and the golden tests allow 0.05 ms.
SPIKE_TOL_MS = 1e-5
RATE_TOL_HZ = 1e-4
VOLATILE = {"scipy", "numpy", "python", "runtime_s"}  # recorded, never compared

exp = math.exp


def exprel(x):
    """x / (exp(x) - 1), the rate form behind the removable 0/0 singularities.

    expm1 keeps full precision near 0; at |x| < 1e-6 the Taylor series
    1 - x/2 + x^2/12 (next term x^4/720) takes over, so x = 0 gives 1.
    """
    if abs(x) < 1e-6:
        return 1.0 - x / 2.0 + x * x / 12.0
    return x / math.expm1(x)


# ---------------------------------------------------------------------------
# Hodgkin & Huxley 1952 (J. Physiol. 117:500), in the modern convention with
# rest near -65 mV. V in mV, t in ms, I in uA/cm^2, g in mS/cm^2, C in uF/cm^2.
#   C dV/dt = I - gNa m^3 h (V-ENa) - gK n^4 (V-EK) - gL (V-EL)
#   dx/dt = a_x(V) (1-x) - b_x(V) x,  x in {m, h, n}
HH = dict(gNa=120.0, gK=36.0, gL=0.3, ENa=50.0, EK=-77.0, EL=-54.387, C=1.0)


def hh_rates(V):
    """(a_m, b_m, a_h, b_h, a_n, b_n) in 1/ms."""
    am = exprel(-(V + 40.0) / 10.0)  # 0.1 (V+40) / (1 - exp(-(V+40)/10)), 1 at V = -40
    bm = 4.0 * exp(-(V + 65.0) / 18.0)
    ah = 0.07 * exp(-(V + 65.0) / 20.0)
    bh = 1.0 / (1.0 + exp(-(V + 35.0) / 10.0))
    an = 0.1 * exprel(-(V + 55.0) / 10.0)  # 0.01 (V+55) / (1 - exp(-(V+55)/10)), 0.1 at V = -55
    bn = 0.125 * exp(-(V + 65.0) / 80.0)
    return am, bm, ah, bh, an, bn


def hh_gates_inf(V):
    am, bm, ah, bh, an, bn = hh_rates(V)
    return [am / (am + bm), ah / (ah + bh), an / (an + bn)]


def hh_ionic(V, m, h, n):
    """gNa m^3 h (V-ENa) + gK n^4 (V-EK) + gL (V-EL), uA/cm^2."""
    p = HH
    return p["gNa"] * m ** 3 * h * (V - p["ENa"]) + p["gK"] * n ** 4 * (V - p["EK"]) + p["gL"] * (V - p["EL"])


def hh_rhs(t, y, I):
    """One HH neuron, state (V, m, h, n), constant current I."""
    V, m, h, n = y
    am, bm, ah, bh, an, bn = hh_rates(V)
    return [(I - hh_ionic(V, m, h, n)) / HH["C"],
            am * (1.0 - m) - bm * m, ah * (1.0 - h) - bh * h, an * (1.0 - n) - bn * n]


# The question's coupled pair: HH cells with a kinetic chemical synapse
#   I_syn,i = (Vr - V_i) / w * sum_j E_ij s_j,     Vr = 20 mV, w = 1
#   ds_j/dt = a(V_j) (1 - s_j) - s_j,  a(V) = 5 / (1 + exp(-(V+3)/8))   (1/ms)
PAIR = dict(I=10.0, E=((0.0, 0.1), (0.1, 0.0)), Vr=20.0, w=1.0, v0=(-65.0, -70.0), T=200.0)


def pair_syn_rate(V):
    return 5.0 / (1.0 + exp(-(V + 3.0) / 8.0))


def pair_rhs(t, y, I):
    """State (V, m, h, n, s) of neuron 1, then of neuron 2."""
    E, Vr, w = PAIR["E"], PAIR["Vr"], PAIR["w"]
    s = (y[4], y[9])
    out = []
    for i in range(2):
        V, m, h, n, si = y[5 * i:5 * i + 5]
        am, bm, ah, bh, an, bn = hh_rates(V)
        i_syn = (Vr - V) / w * (E[i][0] * s[0] + E[i][1] * s[1])
        out += [(I - hh_ionic(V, m, h, n) + i_syn) / HH["C"],
                am * (1.0 - m) - bm * m, ah * (1.0 - h) - bh * h, an * (1.0 - n) - bn * n,
                pair_syn_rate(V) * (1.0 - si) - si]
    return out


def pair_initial_state(V0):
    """(V, m, h, n, s) with the gates and s at steady state for V0."""
    a = pair_syn_rate(V0)
    return [V0] + hh_gates_inf(V0) + [a / (a + 1.0)]


# ---------------------------------------------------------------------------
# Wang & Buzsaki 1996 (J. Neurosci. 16:6402), the fast-spiking interneuron.
# State (V, h, n); m is instantaneous, m = a_m / (a_m + b_m); phi = 5.
WB = dict(gNa=35.0, gK=9.0, gL=0.1, ENa=55.0, EK=-90.0, EL=-65.0, C=1.0, phi=5.0)


def wb_rates(V):
    am = exprel(-(V + 35.0) / 10.0)  # 0.1 (V+35) / (1 - exp(-(V+35)/10))
    bm = 4.0 * exp(-(V + 60.0) / 18.0)
    ah = 0.07 * exp(-(V + 58.0) / 20.0)
    bh = 1.0 / (1.0 + exp(-(V + 28.0) / 10.0))
    an = 0.1 * exprel(-(V + 34.0) / 10.0)  # 0.01 (V+34) / (1 - exp(-(V+34)/10))
    bn = 0.125 * exp(-(V + 44.0) / 80.0)
    return am, bm, ah, bh, an, bn


def wb_derivs(V, h, n, I):
    """(dV/dt, dh/dt, dn/dt) of one Wang-Buzsaki cell with external current I."""
    p = WB
    am, bm, ah, bh, an, bn = wb_rates(V)
    m = am / (am + bm)
    i_ion = p["gNa"] * m ** 3 * h * (V - p["ENa"]) + p["gK"] * n ** 4 * (V - p["EK"]) + p["gL"] * (V - p["EL"])
    return ((I - i_ion) / p["C"], p["phi"] * (ah * (1.0 - h) - bh * h), p["phi"] * (an * (1.0 - n) - bn * n))


def wb_rhs(t, y, I):
    return list(wb_derivs(y[0], y[1], y[2], I))


def wb_gates_inf(V):
    _, _, ah, bh, an, bn = wb_rates(V)
    return [ah / (ah + bh), an / (an + bn)]


# Two Wang-Buzsaki cells inhibiting each other through their own synapse (Wang &
# Buzsaki 1996): ds/dt = alpha F(Vpre) (1-s) - beta s, F(V) = 1/(1+exp(-V/2)),
# I_syn,i = -g s_j (V_i - E_syn), j the other cell. State (V, h, n, s) per cell.
WB_PAIR = dict(I=2.0, g=0.1, E_syn=-75.0, alpha=12.0, beta=0.1, v0=(-65.0, -55.0), T=300.0)


def wb_syn_drive(V):
    return WB_PAIR["alpha"] / (1.0 + exp(-V / 2.0))


def wb_pair_rhs(t, y, I):
    p = WB_PAIR
    out = []
    for i, j in ((0, 1), (1, 0)):
        V, h, n, s = y[4 * i:4 * i + 4]
        dV, dh, dn = wb_derivs(V, h, n, I)
        dV -= p["g"] * y[4 * j + 3] * (V - p["E_syn"]) / WB["C"]
        out += [dV, dh, dn, wb_syn_drive(V) * (1.0 - s) - p["beta"] * s]
    return out


def wb_pair_initial_state(V0):
    a = wb_syn_drive(V0)
    return [V0] + wb_gates_inf(V0) + [a / (a + WB_PAIR["beta"])]


# ---------------------------------------------------------------------------
# Traub & Miles 1991 as in Brette et al. 2007 (J. Comput. Neurosci. 23:349, the
# COBAHH benchmark) and Pospischil et al. 2008 (Biol. Cybern. 99:427, regular
# spiking cell: the same Na and Kd currents plus a slow M-current).
#   C dV/dt = I - gNa m^3 h (V-ENa) - gKd n^4 (V-EK) - gM p (V-EK) - gL (V-EL)
TM = dict(gNa=100.0, gKd=30.0, gM=0.0, gL=0.05, ENa=50.0, EK=-90.0, EL=-60.0, VT=-63.0, C=1.0)
RS = dict(gNa=56.0, gKd=6.0, gM=0.075, gL=0.0205, ENa=50.0, EK=-90.0, EL=-70.3, VT=-56.2, C=1.0)


def tm_rates(V, VT):
    """Traub-Miles rates (1/ms); VT shifts the threshold."""
    u = V - VT
    am = 0.32 * 4.0 * exprel((13.0 - u) / 4.0)  # 0.32 (13-V+VT) / (exp((13-V+VT)/4) - 1)
    bm = 0.28 * 5.0 * exprel((u - 40.0) / 5.0)  # 0.28 (V-VT-40) / (exp((V-VT-40)/5) - 1)
    ah = 0.128 * exp((17.0 - u) / 18.0)
    bh = 4.0 / (1.0 + exp((40.0 - u) / 5.0))
    an = 0.032 * 5.0 * exprel((15.0 - u) / 5.0)  # 0.032 (15-V+VT) / (exp((15-V+VT)/5) - 1)
    bn = 0.5 * exp((10.0 - u) / 40.0)
    return am, bm, ah, bh, an, bn


def m_current_gate(V):
    """Pospischil's slow K (M) gate in inf/tau form: (p_inf, tau_p in ms)."""
    p_inf = 1.0 / (1.0 + exp(-(V + 35.0) / 10.0))
    tau_p = 608.0 / (3.3 * exp((V + 35.0) / 20.0) + exp(-(V + 35.0) / 20.0))
    return p_inf, tau_p


def tm_family_rhs(t, y, I, p):
    """State (V, m, h, n) for Traub-Miles, (V, m, h, n, p) with the M-current."""
    V, m, h, n = y[:4]
    am, bm, ah, bh, an, bn = tm_rates(V, p["VT"])
    i_ion = p["gNa"] * m ** 3 * h * (V - p["ENa"]) + p["gKd"] * n ** 4 * (V - p["EK"]) + p["gL"] * (V - p["EL"])
    out = [0.0, am * (1.0 - m) - bm * m, ah * (1.0 - h) - bh * h, an * (1.0 - n) - bn * n]
    if len(y) == 5:
        p_inf, tau_p = m_current_gate(V)
        i_ion += p["gM"] * y[4] * (V - p["EK"])
        out.append((p_inf - y[4]) / tau_p)
    out[0] = (I - i_ion) / p["C"]
    return out


def tm_rhs(t, y, I):
    return tm_family_rhs(t, y, I, TM)


def rs_rhs(t, y, I):
    return tm_family_rhs(t, y, I, RS)


def tm_initial_state(V0, p, with_m_current):
    am, bm, ah, bh, an, bn = tm_rates(V0, p["VT"])
    y = [V0, am / (am + bm), ah / (ah + bh), an / (an + bn)]
    return y + [m_current_gate(V0)[0]] if with_m_current else y


# ---------------------------------------------------------------------------
# Integration. A system is (right-hand side, indices of the membrane potentials).
SYSTEMS = {
    "hh": (hh_rhs, (0,)),
    "hh_pair": (pair_rhs, (0, 5)),
    "wang-buzsaki": (wb_rhs, (0,)),
    "traub-miles": (tm_rhs, (0,)),
    "pospischil-rs": (rs_rhs, (0,)),
    "wb_pair": (wb_pair_rhs, (0, 4)),
}
# name -> (method, rtol, atol, max_step_ms); first_step is solve_ivp's default.
SOLVERS = {
    "lsoda9": ("LSODA", 1e-9, 1e-9, 0.1),
    "radau9": ("Radau", 1e-9, 1e-9, 0.1),
    "lsoda11": ("LSODA", 1e-11, 1e-11, 0.1),
    "lsoda10": ("LSODA", 1e-10, 1e-10, 0.05),
}


def _crossing(index):
    def event(t, y, I):
        return y[index]
    event.direction = 1.0  # upward through 0 mV only
    return event


def simulate(system, I, y0, T, solver="lsoda9"):
    """Integrate [0, T] ms from y0; (spike times per neuron, state at T)."""
    rhs, v_index = SYSTEMS[system]
    method, rtol, atol, max_step = SOLVERS[solver]
    sol = solve_ivp(rhs, (0.0, T), list(y0), method=method, rtol=rtol, atol=atol, max_step=max_step,
                    events=[_crossing(i) for i in v_index], args=(I,))
    if sol.status != 0:
        raise RuntimeError(f"{system} I={I}: {sol.message}")
    return [te.tolist() for te in sol.t_events], sol.y[:, -1].tolist()


def isi_rate_hz(spikes, t0, t1):
    """1000 / mean interspike interval of the spikes in [t0, t1); 0 if fewer than 2."""
    w = [t for t in spikes if t0 <= t < t1]
    return 1000.0 * (len(w) - 1) / (w[-1] - w[0]) if len(w) >= 2 else 0.0


def max_abs_diff(a, b):
    return max(abs(x - y) for x, y in zip(a, b))


class Runner:
    """Runs simulations in a process pool, each distinct one once."""

    def __init__(self, jobs):
        self.pool = multiprocessing.Pool(jobs) if jobs > 1 else None
        self.memo = {}

    def submit(self, fn, *args):
        key = (fn.__name__, args)
        if key not in self.memo:
            self.memo[key] = self.pool.apply_async(fn, args) if self.pool else _Ready(fn(*args))
        return self.memo[key]

    def close(self):
        if self.pool:
            self.pool.close()
            self.pool.join()


class _Ready:
    def __init__(self, value):
        self.value = value

    def get(self):
        return self.value


def solver_info(solver):
    method, rtol, atol, max_step = SOLVERS[solver]
    return {"method": method, "rtol": rtol, "atol": atol, "max_step_ms": max_step,
            "scipy": scipy.__version__, "numpy": np.__version__, "python": platform.python_version()}


class Rounded(float):
    """A float written with `decimals` decimals; `exact` keeps the full value for --check."""

    def __new__(cls, x, decimals):
        obj = super().__new__(cls, round(x, decimals))
        obj.exact, obj.decimals = x, decimals
        return obj


# ---------------------------------------------------------------------------
# reference_pair.json: the question's coupled HH pair, no noise.
PAIR_DESCRIPTION = ("Coupled HH pair, I=10 both, E=[[0,0.1],[0.1,0]], Vr=20, w=1; N1 from -65, N2 from -70 "
                    "(gates & s at steady state); T=200 ms; spike = upward 0 mV crossing")


def pair_y0():
    return tuple(pair_initial_state(PAIR["v0"][0]) + pair_initial_state(PAIR["v0"][1]))


def euler_pair(dt):
    """Forward Euler on all ten variables; spike time linearly interpolated in the step."""
    y, spikes = list(pair_y0()), [[], []]
    for k in range(round(PAIR["T"] / dt)):
        new = [a + dt * b for a, b in zip(y, pair_rhs(0.0, y, PAIR["I"]))]
        for i, v in enumerate((0, 5)):
            if y[v] < 0.0 <= new[v]:
                spikes[i].append(k * dt + dt * (-y[v]) / (new[v] - y[v]))
        y = new
    return spikes


def by_neuron(spikes):
    return {"neuron1": spikes[0], "neuron2": spikes[1]}


def plan_pair(run):
    args = ("hh_pair", PAIR["I"], pair_y0(), PAIR["T"])
    lsoda, radau, tight = (run.submit(simulate, *args, s) for s in ("lsoda9", "radau9", "lsoda11"))
    euler = {dt: run.submit(euler_pair, dt) for dt in (0.01, 0.001)}

    def assemble():
        (ref, y_T), (rad, _), (tig, _) = lsoda.get(), radau.get(), tight.get()
        y0 = list(pair_y0())
        doc = {"description": PAIR_DESCRIPTION, "solver": solver_info("lsoda9"),
               "initial_state": {"neuron1": y0[:5], "neuron2": y0[5:], "order": ["V", "m", "h", "n", "s"]},
               "spikes_ms": by_neuron(ref), "n_spikes": [len(s) for s in ref],
               "spikes_ms_Radau_1e-9": by_neuron(rad),
               "max_abs_diff_LSODA_vs_Radau_ms": max(max_abs_diff(a, b) for a, b in zip(ref, rad)),
               "max_abs_diff_LSODA_1e-9_vs_LSODA_1e-11_ms": max(max_abs_diff(a, b) for a, b in zip(ref, tig)),
               "spikes_ms_LSODA_1e-11": by_neuron(tig),
               "lag_n2_minus_n1_ms": [b - a for a, b in zip(*ref)],
               "state_at_T": y_T}
        for dt, job in euler.items():
            eul = job.get()
            devs = [[e - r for e, r in zip(es, rs)] for es, rs in zip(eul, ref)]
            doc[f"euler_dt{dt}"] = {"spikes_ms": by_neuron(eul), "n_spikes": [len(s) for s in eul],
                                    "max_abs_dev_from_reference_ms": max(abs(d) for ds in devs for d in ds),
                                    "dev_last_spike_ms": [ds[-1] for ds in devs]}
        return doc
    return assemble


# ---------------------------------------------------------------------------
# reference_fi.json: one HH neuron, constant current, from rest.
FI_DESCRIPTION = ("Deterministic HH f-I curve, step from rest (V=-65, gates at x_inf(-65)); spike = upward 0 mV "
                  "crossing; rate over [500,2000) ms")
FI_T, FI_DISCARD, FI_LONG_T = 2000.0, 500.0, 5000.0
FI_CURRENTS = (0, 2, 4, 6, 6.5, 7, 8, 10, 15, 20, 30, 50)
COARSE = [round(5.0 + 0.05 * k, 2) for k in range(101)]  # 5.00 .. 10.00
FINE = [round(6.25 + 0.01 * k, 2) for k in range(6)]  # 6.25 .. 6.30
FOLD_START, FOLD_START_T = 6.40, 1000.0  # 1000 ms from rest puts the neuron on the I = 6.40 cycle
FOLD_STEPS = [round(6.39 - 0.01 * k, 2) for k in range(14)]  # 6.39 .. 6.26, 3000 ms each
FOLD_FINE = [round(6.269 - 0.001 * k, 3) for k in range(9)]  # 6.269 .. 6.261, 5000 ms each
FOLD_STEP_T = 3000.0


def rest_y0():
    return tuple([-65.0] + hh_gates_inf(-65.0))


def run_fi(run, I, T=FI_T):
    return run.submit(simulate, "hh", float(I), rest_y0(), T)


def sustained(spikes, T):
    """Still firing: a spike in the last 500 ms of the run."""
    return any(t >= T - 500.0 for t in spikes)


def fold_continuation():
    """Follow the stable limit cycle down in I, each run starting where the last ended.

    The spike counts depend on the phase each run starts at (the failing step's
    count most: 9 here, 12 had the I = 6.40 run lasted 2000 ms), so the
    protocol is fixed to the millisecond: 1000 ms at 6.40 from rest, 3000 ms per
    step from 6.39 down to the first I that stops firing, then 5000 ms per
    step from 6.269 down, starting again from the last state on the cycle.
    """
    _, y = simulate("hh", FOLD_START, rest_y0(), FOLD_START_T)
    steps = []
    for currents, T in ((FOLD_STEPS, FOLD_STEP_T), (FOLD_FINE, FI_LONG_T)):
        for I in currents:
            (spikes,), y_end = simulate("hh", I, tuple(y), T)
            step = {"I": I, "cycle_persists": sustained(spikes, T), "n_spikes": len(spikes)}
            if T != FOLD_STEP_T:
                step["T_ms"] = T
            steps.append(step)
            if not step["cycle_persists"]:
                break  # carry on from the last state on the cycle
            y = y_end
    return steps


def plan_fi(run):
    t_start = time.time()
    fold = run.submit(fold_continuation)  # the longest job: first in the queue
    curve = {I: run_fi(run, I) for I in FI_CURRENTS}
    radau10 = run.submit(simulate, "hh", 10.0, rest_y0(), FI_T, "radau9")
    scans = {I: run_fi(run, I) for I in COARSE + FINE}
    long_runs = {I: run_fi(run, I, FI_LONG_T) for I in FINE}

    def assemble():
        doc = {"description": FI_DESCRIPTION, "solver": solver_info("lsoda9"), "params": dict(HH),
               "T_ms": FI_T, "discard_ms": FI_DISCARD, "initial_state": list(rest_y0())}
        y0 = rest_y0()
        doc["rest_equilibrium"] = {"V_eq_I0": brentq(lambda V: hh_ionic(V, *hh_gates_inf(V)), -70.0, -60.0,
                                                     xtol=1e-14),
                                   "dVdt_at_initial_state": hh_rhs(0.0, y0, 0.0)[0]}
        doc["fi_curve"] = [fi_row(I, curve[I].get()[0][0]) for I in FI_CURRENTS]
        i10, rad = curve[10].get()[0][0], radau10.get()[0][0]
        isi = np.diff(i10)
        doc.update({"I10_first5_spikes_ms": i10[:5], "I10_first5_spikes_ms_Radau": rad[:5],
                    "I10_LSODA_vs_Radau_max_abs_diff_first5_ms": max_abs_diff(i10[:5], rad[:5]),
                    "I10_LSODA_vs_Radau_max_abs_diff_all_spikes_ms": max_abs_diff(i10, rad),
                    "I10_period_ms_late": float(np.mean(isi[-5:]))})
        doc.update(threshold_docs(scans, long_runs))
        steps = fold.get()
        doc["limit_cycle_fold_continuation"] = {
            "method": "start on I=6.40 cycle, lower I, carry the end state; persists = spikes in last 500 ms",
            "steps": steps, "lowest_I_with_cycle": min(s["I"] for s in steps if s["cycle_persists"])}
        doc["runtime_s"] = time.time() - t_start
        return doc
    return assemble


def fi_row(I, spikes):
    window = [t for t in spikes if FI_DISCARD <= t < FI_T]
    return {"I": I, "n_spikes_window": len(window),
            "rate_count_Hz": len(window) / ((FI_T - FI_DISCARD) / 1000.0),
            "rate_isi_Hz": isi_rate_hz(spikes, FI_DISCARD, FI_T), "n_spikes_total": len(spikes),
            "first_spikes_ms": spikes[:3]}


def threshold_docs(scans, long_runs):
    """Onset of sustained firing from rest: a coarse scan, a fine one, a 5000 ms confirmation."""
    spikes = {I: job.get()[0][0] for I, job in scans.items()}
    coarse = [{"I": I, "sustained": sustained(spikes[I], FI_T), "n_spikes": len(spikes[I])} for I in COARSE]
    fine = [{"I": I, "sustained": sustained(spikes[I], FI_T), "n_spikes": len(spikes[I]),
             "rate_isi_Hz": isi_rate_hz(spikes[I], FI_DISCARD, FI_T)} for I in FINE]
    k = next(i for i, row in enumerate(fine) if row["sustained"])
    below, onset = FINE[k - 1], FINE[k]
    long_below, long_onset = long_runs[below].get()[0][0], long_runs[onset].get()[0][0]
    threshold = {"criterion": "spike(s) in the last 500 ms of a 2000 ms run from rest; bracket confirmed "
                              "with T=5000 ms",
                 "I_min_sustained": onset,
                 "I_below_n_spikes_T5000": len(long_below),
                 "I_below_sustained_T5000": sustained(long_below, FI_LONG_T),
                 "I_min_n_spikes_T5000": len(long_onset),
                 "I_min_sustained_T5000": sustained(long_onset, FI_LONG_T),
                 "rate_at_I_min_Hz_isi": isi_rate_hz(long_onset, FI_DISCARD, FI_T)}
    return {"threshold_coarse_scan_step0.05": coarse, "threshold_fine_scan_step0.01": fine, "threshold": threshold}


# ---------------------------------------------------------------------------
# reference_models.json: Wang-Buzsaki, Traub-Miles, Pospischil RS f-I points and
# the Wang-Buzsaki inhibitory pair, all at LSODA rtol = atol = 1e-10, max_step 0.05 ms.
MODEL_CURRENTS = {
    "wang-buzsaki": (0.15, 0.17, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0),
    "traub-miles": (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0),
    "pospischil-rs": (0.5, 1.0, 2.0, 5.0, 10.0),
}


def model_y0(name, V0=-65.0):
    if name == "wang-buzsaki":
        return tuple([V0] + wb_gates_inf(V0))
    return tuple(tm_initial_state(V0, TM if name == "traub-miles" else RS, name == "pospischil-rs"))


def wb_pair_y0():
    return tuple(wb_pair_initial_state(WB_PAIR["v0"][0]) + wb_pair_initial_state(WB_PAIR["v0"][1]))


def plan_models(run):
    jobs = {(name, I): run.submit(simulate, name, I, model_y0(name), FI_T, "lsoda10")
            for name, currents in MODEL_CURRENTS.items() for I in currents}
    p = WB_PAIR
    pair = run.submit(simulate, "wb_pair", p["I"], wb_pair_y0(), p["T"], "lsoda10")

    def assemble():
        models = {}
        for (name, I), job in jobs.items():
            spikes = job.get()[0][0]
            models.setdefault(name, []).append({
                "I": I, "rate_isi_hz": Rounded(isi_rate_hz(spikes, FI_DISCARD, FI_T), 4),
                "spikes_in_window": sum(FI_DISCARD <= t < FI_T for t in spikes),
                "first_spikes_ms": [Rounded(t, 6) for t in spikes[:5]]})
        spikes = pair.get()[0]
        return {"solver": "scipy solve_ivp LSODA rtol=atol=1e-10 max_step=0.05", "models": models,
                "wb_pair": {"I": p["I"], "g_syn": p["g"], "e_syn_mv": p["E_syn"], "v0_mv": list(p["v0"]),
                            "duration_ms": p["T"], "initial_state": list(wb_pair_y0()),
                            "spikes_ms": by_neuron([[Rounded(t, 9) for t in s] for s in spikes])}}
    return assemble


PLANS = {"pair": plan_pair, "fi": plan_fi, "models": plan_models}


# ---------------------------------------------------------------------------
# --check: compare a recomputed document with the committed one.
class Comparison:
    def __init__(self):
        self.problems = []
        self.max_dev = {"spike/ms": 0.0, "rate/Hz": 0.0, "other": 0.0}
        self.max_raw_rounded = {}  # |recomputed - committed| of rounded numbers, rounding included

    def walk(self, new, old, path=""):
        key = path.rsplit(".", 1)[-1].split("[", 1)[0]
        if key in VOLATILE:
            return
        if isinstance(new, dict) and isinstance(old, dict):
            if list(new) != list(old):
                self.problems.append(f"{path or '/'}: keys {list(new)} != committed {list(old)}")
            for k in new:
                if k in old:
                    self.walk(new[k], old[k], f"{path}.{k}" if path else k)
        elif isinstance(new, list) and isinstance(old, list):
            if len(new) != len(old):
                self.problems.append(f"{path}: {len(new)} entries, committed {len(old)}")
            for i, (a, b) in enumerate(zip(new, old)):
                self.walk(a, b, f"{path}[{i}]")
        elif type(new) is not type(old) and not (isinstance(new, Rounded) and type(old) is float):
            self.problems.append(f"{path}: {new!r} ({type(new).__name__}), committed {old!r} ({type(old).__name__})")
        elif isinstance(new, float):
            self.number(new, old, path)
        elif new != old:
            self.problems.append(f"{path}: {new!r}, committed {old!r}")

    def number(self, new, old, path):
        rate = "hz" in path.lower()
        kind = "rate/Hz" if rate else ("spike/ms" if ("spike" in path or "_ms" in path) else "other")
        if isinstance(new, Rounded):  # the committed value stands for an interval of half a unit
            raw = abs(new.exact - old)
            self.max_raw_rounded[kind] = max(self.max_raw_rounded.get(kind, 0.0), raw)
            dev = max(0.0, raw - 0.5 * 10.0 ** -new.decimals)
        else:
            dev = abs(new - old)
        self.max_dev[kind] = max(self.max_dev[kind], dev)
        tol = RATE_TOL_HZ if rate else SPIKE_TOL_MS
        if not dev <= tol:
            self.problems.append(f"{path}: {float(new)!r}, committed {old!r} (off by {dev:.3g} > {tol:g})")


def check(name, doc, committed_path):
    committed = json.loads(committed_path.read_text())
    cmp = Comparison()
    cmp.walk(doc, committed)
    devs = ", ".join(f"{k} {v:.3g}" for k, v in cmp.max_dev.items())
    print(f"{committed_path.name}: max deviation {devs}; {len(cmp.problems)} problem(s)")
    if cmp.max_raw_rounded:
        raw = ", ".join(f"{k} {v:.3g}" for k, v in cmp.max_raw_rounded.items())
        print(f"  (rounded numbers count beyond their rounding; unrounded |new - committed|: {raw})")
    for p in cmp.problems:
        print(f"  {p}")
    for field in ("scipy", "numpy", "python"):
        old = (committed.get("solver") or {}).get(field) if isinstance(committed.get("solver"), dict) else None
        if old and old != doc["solver"][field]:
            print(f"  note: committed with {field} {old}, recomputed with {doc['solver'][field]}")
    return not cmp.problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="recompute and compare with the committed files")
    ap.add_argument("--out", type=Path, help="write the files into this folder (default: tests/data/)")
    ap.add_argument("--only", help="one file: pair, fi, models (or its file name)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes (default 2)")
    args = ap.parse_args(argv)
    names = list(FILES)
    if args.only:
        names = [n for n in FILES if args.only in (n, FILES[n], FILES[n].removesuffix(".json"))]
        if not names:
            ap.error(f"--only {args.only}: choose one of {', '.join(FILES)}")
    t0 = time.time()
    run = Runner(args.jobs)
    try:
        assemble = {n: PLANS[n](run) for n in names}
        docs = {n: assemble[n]() for n in names}
    finally:
        run.close()
    ok = True
    for n in names:
        if args.check:
            ok &= check(n, docs[n], HERE / FILES[n])
        else:
            out = (args.out or HERE) / FILES[n]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(docs[n], indent=1))
            print(f"wrote {out}")
    print(f"{time.time() - t0:.0f} s with {args.jobs} process(es)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
