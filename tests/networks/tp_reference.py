"""Re-simulations of Traces Propagation's learning graph (``learn="tp"``), with the graph's
timing: each layer's prototype unit sees the layer's spikes of step t at the same graph
step and its signal m[t] reaches the neuron one step later, paired with Ψ(u[t]) and the
pre spike x[t] (kept two steps in the synapse's tags); the readout learns from its
β-trace.

- :func:`simulate_tp_graph`: floating point, from the functional core;
- :func:`simulate_fixed_tp_graph`: the integer arithmetic written out with numpy (LIF,
  the unit's trace, similarities, an integer softmax written here from its spec, the
  back projection) and our model of the bit-approximate engine.

Prototype tables come from :func:`lava_local.rules.tp.label_path_tables` (tested against
the batched trainer's label path on its own).
"""

import math

import numpy as np
from graph_reference import _reset_step, _sample_step, _stream

from lava_local.fixed import (
    ACT_SHIFT,
    GRADED_MAX,
    TRACE_MAX,
    UV_MAX,
    decay,
    decay_to_int,
    mant_shift,
    quantize_weights,
    to_membrane,
    weight_precision,
    wrap24,
)
from lava_local.functional import (
    LIFState,
    get_surrogate,
    lif_step,
    pre_trace_step,
    tp_prototype_signal,
)
from lava_local.functional._backend import softmax
from lava_local.rules.stllr_loihi import FixedEngineReference, OnChipSTLLR
from lava_local.rules.tp import OnChipTP, TPParams, label_path_tables


def _label_proj(net):
    return net.matrices["label_proj"]


def simulate_tp_graph(net, dataset, n_samples, eta):
    """Float graph: predictions and the weights after learning."""
    beta = TPParams.from_flat(net.params, strict=False).beta
    L, T = net.n_hidden, net.n_steps
    stream, labels, interval, n_run = _stream(net, dataset, n_samples)
    W = [w.copy() for w in net.weights]
    psi_f = get_surrogate(net.surrogate)
    n_out = W[-1].shape[0]
    n_win = T - net.window_start
    tables = label_path_tables(net, _label_proj(net), beta)
    abuf = [np.zeros(w.shape[0]) for w in W]
    st = [LIFState(np.zeros(w.shape[0]), np.zeros(w.shape[0])) for w in W[:-1]]
    psi = [np.zeros(w.shape[0]) for w in W[:-1]]
    eps = [np.zeros(w.shape[0]) for w in W[:-1]]
    m_buf = [np.zeros(w.shape[0]) for w in W[:-1]]
    tags = [np.zeros((2, w.shape[1])) for w in W[:-1]]      # (x[σ-1], x[σ-2]) per synapse
    q_out = np.zeros(W[-1].shape[1])
    o, acc, preds = np.zeros(n_out), np.zeros(n_out), []
    for sig in range(1, n_run + 1):
        psi_prev = [p.copy() for p in psi]
        for l in range(L):
            if (sig - (3 + l)) % interval == 0:
                st[l] = LIFState(np.zeros_like(st[l].u), np.zeros_like(st[l].u))
            st[l] = lif_step(st[l], abuf[l], net.gamma, net.v_th)
            psi[l] = psi_f(st[l].u, net.v_th)
        t_ro = _sample_step(sig, 3 + L, interval)
        if t_ro == 0:
            o[:] = 0
            acc[:] = 0
        o = net.kappa * o + abuf[L]
        if net.window_start <= t_ro < T:
            acc += o
        if t_ro == T - 1:
            preds.append(int(np.argmax(acc)))
        err = np.zeros(n_out)
        if net.window_start <= t_ro < T:
            err = softmax(o)
            err[labels[sig]] -= 1
            err /= n_win
        delta = m_buf                       # what each neuron receives now
        m_buf = []
        for l in range(L):
            t_u = _sample_step(sig, 3 + l, interval)
            if t_u == 0:
                eps[l] = np.zeros_like(eps[l])
            m = np.zeros_like(eps[l])
            if 0 <= t_u < T:
                eps[l] = beta * eps[l] + st[l].y
                if t_u >= net.window_start:
                    protos, targets = tables[l]
                    m = tp_prototype_signal(eps[l][None], protos[t_u],
                                            targets[t_u][labels[sig]][None])[0] / n_win
            m_buf.append(m)
        pres = [stream[sig]] + [s.y for s in st]
        new_buf = [W[l] @ pres[l] for l in range(L + 1)]
        for l in range(L):
            W[l] = W[l] - eta * np.outer(delta[l] * psi_prev[l], tags[l][1])
            tags[l] = np.stack([pres[l], tags[l][0]])
        if _reset_step(sig, L, interval):
            q_out = np.zeros_like(q_out)
        q_prev, q_out = q_out, pre_trace_step(q_out, pres[L], beta)
        W[L] = W[L] - eta * np.outer(err, q_prev)
        abuf = new_buf
    return np.array(preds[:n_samples]), W


def int_softmax_reference(z, unit):
    """Integer softmax written from its spec (Q7 probabilities; 2^x from a 256-entry Q16
    table of 2^(-r/256), x the distance to the maximum in units 2^-8)."""
    m, k = mant_shift(unit * math.log2(math.e) * 256.0)
    out = []
    zmax = max(int(v) for v in z)
    vals = []
    for v in z:
        prod = (zmax - int(v)) * m
        x = (prod + ((1 << (k - 1)) if k > 0 else 0)) >> k
        lut = int(round(2.0 ** 16 * 2.0 ** (-(x % 256) / 256.0)))
        vals.append(lut >> min(x // 256, 62))
    s = sum(vals)
    for e in vals:
        out.append((e * 128 + s // 2) // s)
    return np.array(out, dtype=np.int64)


def simulate_fixed_tp_graph(net, dataset, n_samples, eta, rng_seed=0):
    """Fixed-point graph: predictions and the weights after learning (real units)."""
    beta = TPParams.from_flat(net.params, strict=False).beta
    L, T = net.n_hidden, net.n_steps
    stream, labels, interval, n_run = _stream(net, dataset, n_samples)
    n_out = net.layer_sizes[-1]
    n_win = T - net.window_start
    precs = [weight_precision(w) for w in net.weights]
    P = max(precs)
    w_exp = [P - p for p in precs]
    tables = label_path_tables(net, _label_proj(net), beta, fixed=True, precision=P)
    rules = [OnChipTP(eta=eta, mode="fixed", weight_precision=precs[l],
                      delta_max=(1.0 / n_win) / (1.0 - beta)) for l in range(L)]
    rule_out = OnChipSTLLR(eta=eta, alpha_pre=1.0, alpha_post=0.0, lam_pre=beta,
                           lam_post=0.0, mode="fixed", weight_precision=precs[-1],
                           delta_max=1.0 / n_win, psi_max=1.0)
    engines = [FixedEngineReference(quantize_weights(w, p), r, rng_seed + l)
               for l, (w, p, r) in enumerate(zip(net.weights, precs, [*rules, rule_out]))]
    d_gamma, d_kappa, d_beta = (decay_to_int(v) for v in (net.gamma, net.kappa, beta))
    vth = int(to_membrane(net.v_th, P))
    one = 2 ** (ACT_SHIFT + P)
    d_unit = 2.0 ** -14 / n_win
    scales = [mant_shift(d_unit * 0.3 / 128 / r.s1) for r in rules]
    m_out = mant_shift(2.0 ** -7 / rule_out.s1)
    sizes = net.layer_sizes
    abuf = [np.zeros(n, dtype=np.int64) for n in sizes[1:]]
    u = [np.zeros(n, dtype=np.int64) for n in sizes[1:-1]]
    y = [np.zeros(n, dtype=np.int64) for n in sizes[1:-1]]
    psi = [np.zeros(n, dtype=np.int64) for n in sizes[1:-1]]
    eps = [np.zeros(n, dtype=np.int64) for n in sizes[1:-1]]
    m_buf = [np.zeros(n, dtype=np.int64) for n in sizes[1:-1]]
    o = np.zeros(n_out, dtype=np.int64)
    acc = np.zeros(n_out, dtype=np.int64)
    preds = []
    for sig in range(1, n_run + 1):
        psi_prev = [p.copy() for p in psi]
        for l in range(L):
            if (sig - (3 + l)) % interval == 0:
                u[l][:], y[l][:] = 0, 0
            v = decay(u[l] - vth * y[l], d_gamma)
            u[l] = wrap24(v + (abuf[l] << ACT_SHIFT))
            y[l] = (u[l] > vth).astype(np.int64)
            psi[l] = np.right_shift(np.maximum(one - np.abs(u[l] - vth), 0), P - 1)
        t_ro = _sample_step(sig, 3 + L, interval)
        if t_ro == 0:
            o[:] = 0
            acc[:] = 0
        o = wrap24(decay(o, d_kappa) + (abuf[L] << ACT_SHIFT))
        if net.window_start <= t_ro < T:
            acc += o
        if t_ro == T - 1:
            preds.append(int(np.argmax(acc)))
        err = np.zeros(n_out, dtype=np.int64)
        if net.window_start <= t_ro < T:
            e = softmax(o * 2.0 ** -(ACT_SHIFT + P))
            e[labels[sig]] -= 1.0
            err = np.clip(np.rint(e * (1.0 / n_win) / 2.0 ** -7), -GRADED_MAX,
                          GRADED_MAX).astype(np.int64)
        delta = m_buf
        m_buf = []
        for l in range(L):
            t_u = _sample_step(sig, 3 + l, interval)
            if t_u == 0:
                eps[l][:] = 0
            m = np.zeros(sizes[1 + l], dtype=np.int64)
            if 0 <= t_u < T:
                eps[l] = (eps[l] * (4096 - d_beta) >> 12) + 128 * y[l]
                if t_u >= net.window_start:
                    protos, targets = tables[l]
                    z = protos[t_u] @ eps[l]
                    e = int_softmax_reference(z, 2.0 ** -14) - targets[t_u][labels[sig]]
                    m = np.clip(protos[t_u].T @ e, -UV_MAX, UV_MAX)
            m_buf.append(m)
        pres = [stream[sig].astype(bool)] + [yl.astype(bool) for yl in y]
        new_buf = []
        for l, eng in enumerate(engines):
            a = eng.weights[:, pres[l]].sum(axis=1)
            new_buf.append(a << w_exp[l] if w_exp[l] > 0 else a >> -w_exp[l])
        if _reset_step(sig, L, interval):
            engines[L].reset_traces()
        for l in range(L):
            mk, kk = scales[l]
            y1 = np.minimum((np.abs(delta[l]) * psi_prev[l] * mk) >> kk, TRACE_MAX)
            engines[l].step(pres[l], y1, np.zeros_like(y1), delta[l] > 0)
        mm, kk = m_out
        engines[L].step(pres[L], np.minimum((np.abs(err) * mm) >> kk, TRACE_MAX),
                        np.zeros(n_out, dtype=np.int64), err > 0)
        abuf = new_buf
    weights = [eng.weights * 2.0 ** -p for eng, p in zip(engines, precs)]
    return np.array(preds[:n_samples]), weights
