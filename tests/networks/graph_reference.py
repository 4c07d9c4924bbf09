"""Re-simulations of the Lava graph of lava_local.networks.graph, with the graph's
timing (one-step Dense delays, per-layer reset offsets, the learning-signal paths):

- :func:`simulate_graph`: floating point, built from the functional core (S-TLLR's
  traces and update, the TESS signal), for the float graph;
- :func:`simulate_fixed_graph`: the integer arithmetic of the fixed-point graph written
  out with numpy and :mod:`lava_local.fixed`'s primitives, with our own model of the
  bit-approximate learning engine (:class:`FixedEngineReference`), for the fixed graph.

Learning signals: ``"dfa"`` (the readout's error through fixed feedback matrices, one
step late at every layer after the readout) or ``"tess"`` (per layer: the layer's
spikes → B/n → f(z) − onehot, scaled → signs of Bᵀ; two steps late).
"""

import numpy as np

from lava_local.fixed import (
    ACT_SHIFT,
    GRADED_MAX,
    TRACE_MAX,
    decay,
    decay_to_int,
    mant_shift,
    mul_round,
    quantize_weights,
    to_membrane,
    weight_precision,
    wrap24,
)
from lava_local.functional import (
    LIFState,
    get_surrogate,
    lif_step,
    noncausal_trace,
    post_trace_step,
    pre_trace_step,
    square_wave_projection,
    stllr_update,
)
from lava_local.functional._backend import softmax
from lava_local.rules.stllr_loihi import FixedEngineReference, OnChipSTLLR
from lava_local.rules.tess import error_unit


def online_batched(trainer, dataset, n):
    """Stream the first ``n`` samples through a batched ``trainer`` one at a time (the
    graph's order), in float64."""
    import torch

    for i in range(n):
        x = torch.tensor(dataset.spikes[i:i + 1]).permute(1, 0, 2).double()
        trainer.train_batch(x, torch.tensor(dataset.labels[i:i + 1]))


def update_cosines(after_a, after_b, before, before_a=None):
    """Per layer: cosine similarity of two weight updates from the same start
    (``before_a``: where ``a`` started, if not ``before``, e.g. the fixed-point graph's
    quantised weights)."""
    out = []
    for a, b, w0, wa in zip(after_a, after_b, before, before_a or before):
        da, db = a - wa, b - w0
        out.append(float((da * db).sum() / np.linalg.norm(da) / np.linalg.norm(db)))
    return out


def quantised(weights):
    """The weights as the fixed-point graph starts from them (real units)."""
    return [quantize_weights(w, weight_precision(w)) * 2.0 ** -weight_precision(w)
            for w in weights]


def _stream(net, dataset, n_samples):
    """Inputs and labels per graph step σ (the dataloader's one-step offset)."""
    L, T = net.n_hidden, net.n_steps
    interval = T + L + 2
    n_run = n_samples * interval + 2
    stream = np.zeros((n_run + 1, net.layer_sizes[0]))
    labels = np.zeros(n_run + 1, dtype=int)
    for k in range(n_samples):
        x, y = dataset[k]
        for t in range(interval):
            s = k * interval + 2 + t
            if s <= n_run:
                if t < T:
                    stream[s] = x[t]
                labels[s] = y
    return stream, labels, interval, n_run


def _sample_step(sig, offset, interval):
    return (sig - offset) % interval if sig >= offset else -1


def _reset_step(sig, l, interval):
    """Whether the pre traces of synapse layer l (L = the readout's) are zeroed at σ:
    the step at which each sample's first pre-synaptic spikes reach them."""
    return sig >= 2 + l and (sig - (2 + l)) % interval == 0


def simulate_graph(net, dataset, n_samples, eta, feedback=None, learn=True,
                   signal="dfa", f="softmax", reset_traces=True):
    """Float graph: predictions and the weights after learning (real units); for a
    recurrent net also the recurrent weights V^l (``(preds, W, V)``): V^l y^l[t-1] reaches
    the layer one step after its spikes, V learns with S-TLLR's update over the pre trace
    of the layer's own spikes, and a recurrent layer is silent outside its samples."""
    sp = net.params
    L, T = net.n_hidden, net.n_steps
    stream, labels, interval, n_run = _stream(net, dataset, n_samples)
    W = [w.copy() for w in net.weights]
    V = [v.copy() for v in net.recurrent] if net.recurrent else []
    rbuf = [np.zeros(v.shape[0]) for v in V]
    xr = [np.zeros(v.shape[1]) for v in V]
    psi_f = get_surrogate(net.surrogate)
    n_out = W[-1].shape[0]
    n_win = T - net.window_start
    signs = [square_wave_projection(n_out, w.shape[0], sp.get("tess_f_lo", 50.0),
                                    sp.get("tess_f_hi", 512.0), scale=False)
             for w in W[:-1]]
    abuf = [np.zeros(w.shape[0]) for w in W]
    st = [LIFState(np.zeros(w.shape[0]), np.zeros(w.shape[0])) for w in W[:-1]]
    h = [np.zeros(w.shape[0]) for w in W[:-1]]
    x1 = [np.zeros(w.shape[1]) for w in W]  # the last one is the readout's κ-trace
    delta = [np.zeros(w.shape[0]) for w in W[:-1]]     # arriving at the neurons now
    z_buf = [np.zeros(n_out) for _ in W[:-1]]          # arriving at TESS's units now
    o, acc, preds = np.zeros(n_out), np.zeros(n_out), []
    for sig in range(1, n_run + 1):
        for l in range(L):
            if (sig - (3 + l)) % interval == 0:
                st[l] = LIFState(np.zeros_like(st[l].u), np.zeros_like(st[l].u))
                h[l][:] = 0
            st[l] = lif_step(st[l], abuf[l] + (rbuf[l] if l < len(V) else 0.0), net.gamma,
                             net.v_th)
            t_n = _sample_step(sig, 3 + l, interval)
            if l < len(V) and not 0 <= t_n < T:
                st[l] = LIFState(st[l].u, np.zeros_like(st[l].y))
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
        if learn and net.window_start <= t_ro < T:
            err = softmax(o)
            err[labels[sig]] -= 1
            err /= n_win
        local = []   # TESS's unit outputs at this step
        for l in range(L):
            e = np.zeros(n_out)
            t_u = _sample_step(sig, 4 + l, interval)
            if learn and signal == "tess" and net.window_start <= t_u < T:
                e = softmax(z_buf[l]) if f == "softmax" else z_buf[l].copy()
                e[labels[sig]] -= 1
                e = e * (1.0 / n_win)
            local.append(e)
        pres = [stream[sig]] + [s.y for s in st]
        new_buf = [W[l] @ pres[l] for l in range(L + 1)]
        new_rbuf = [v @ st[l].y for l, v in enumerate(V)]
        if learn and reset_traces:
            for l in range(L + 1):
                if _reset_step(sig, l, interval):
                    x1[l] = np.zeros_like(x1[l])
            for l in range(len(V)):
                if _reset_step(sig, l + 1, interval):     # own spikes: one step later
                    xr[l] = np.zeros_like(xr[l])
        for l in range(L):
            psi = psi_f(st[l].u, net.v_th)
            h_next = post_trace_step(h[l], psi, sp["lam_post"])
            q_prev, x1[l] = x1[l], pre_trace_step(x1[l], pres[l], sp["lam_pre"])
            h_eff = noncausal_trace(h_next, sp["lam_post"], sp["post_form"])
            if learn:
                g = stllr_update(delta[l], psi, q_prev, h_eff, pres[l], sp["alpha_pre"],
                                 sp["alpha_post"])
                W[l] = W[l] - eta * g
            if l < len(V):
                qr_prev, xr[l] = xr[l], pre_trace_step(xr[l], st[l].y, sp["lam_pre"])
                if learn:
                    V[l] = V[l] - eta * stllr_update(delta[l], psi, qr_prev, h_eff, st[l].y,
                                                     sp["alpha_pre"], sp["alpha_post"])
            h[l] = h_next
        # readout synapses: exact local gradient, error of this step × κ-trace up to t-1
        q_prev, x1[L] = x1[L], pre_trace_step(x1[L], pres[L], net.kappa)
        if learn:
            W[L] = W[L] - eta * np.outer(err, q_prev)
        abuf, rbuf = new_buf, new_rbuf
        if learn and signal == "dfa":
            delta = [b @ err for b in feedback]
        elif learn:
            delta = [sg.T @ e for sg, e in zip(signs, local)]
            z_buf = [sg @ s.y / sg.shape[1] for sg, s in zip(signs, st)]
    if V:
        return np.array(preds[:n_samples]), W, V
    return np.array(preds[:n_samples]), W


def simulate_fixed_graph(net, dataset, n_samples, eta, signal, rng_seed=0, feedback=None,
                         reset_traces=True):
    """Fixed-point graph (sim-fixed, LIF with the triangle Ψ): predictions and the
    weights after learning (real units), from integer arithmetic written out here."""
    sp = net.params
    L, T = net.n_hidden, net.n_steps
    stream, labels, interval, n_run = _stream(net, dataset, n_samples)
    n_out = net.layer_sizes[-1]
    n_win = T - net.window_start
    precs = [weight_precision(w) for w in net.weights]
    P = max(precs)
    w_exp = [P - p for p in precs]
    rules = [OnChipSTLLR(eta=eta, alpha_pre=sp["alpha_pre"], alpha_post=sp["alpha_post"],
                         lam_pre=sp["lam_pre"], lam_post=sp["lam_post"],
                         post_form=sp["post_form"], mode="fixed", weight_precision=precs[l],
                         delta_max=1.0) for l in range(L)]
    rule_out = OnChipSTLLR(eta=eta, alpha_pre=1.0, alpha_post=0.0, lam_pre=net.kappa,
                           lam_post=0.0, mode="fixed", weight_precision=precs[-1],
                           delta_max=1.0 / n_win, psi_max=1.0)
    engines = [FixedEngineReference(quantize_weights(w, p), r, rng_seed + l)
               for l, (w, p, r) in enumerate(zip(net.weights, precs, [*rules, rule_out]))]
    # neurons: 24-bit membranes in units 2^-(6+P), 12-bit decays, triangle ψ in 7 bits
    d_gamma, d_kappa = decay_to_int(net.gamma), decay_to_int(net.kappa)
    vth = int(to_membrane(net.v_th, P))
    one = 2 ** (ACT_SHIFT + P)
    lam_post = int(round(sp["lam_post"] * 4096))
    if signal == "tess":
        unit_e = error_unit(1.0 / n_win)
        d_unit = unit_e
    else:
        d_unit = 2.0 ** -7
    scales = []
    for r in rules:
        u = d_unit * 0.3 / 128
        scales.append((mant_shift(u / r.s1), mant_shift(u / r.s2) if r.s2 else (0, 0)))
    m_out = mant_shift(2.0 ** -7 / rule_out.s1)
    signs = [square_wave_projection(n_out, n, sp.get("tess_f_lo", 50.0),
                                    sp.get("tess_f_hi", 512.0), scale=False).astype(np.int64)
             for n in net.layer_sizes[1:-1]]
    fb = []
    if signal == "dfa":
        for b in feedback:
            pb = weight_precision(b)
            fb.append((quantize_weights(b, pb).astype(np.int64), pb))
    sizes = net.layer_sizes
    abuf = [np.zeros(n, dtype=np.int64) for n in sizes[1:]]
    u = [np.zeros(n, dtype=np.int64) for n in sizes[1:-1]]
    y = [np.zeros(n, dtype=np.int64) for n in sizes[1:-1]]
    hh = [np.zeros(n, dtype=np.int64) for n in sizes[1:-1]]
    delta = [np.zeros(n, dtype=np.int64) for n in sizes[1:-1]]
    z_buf = [np.zeros(n_out, dtype=np.int64) for _ in range(L)]
    o = np.zeros(n_out, dtype=np.int64)
    acc = np.zeros(n_out, dtype=np.int64)
    preds = []
    for sig in range(1, n_run + 1):
        psis = []
        for l in range(L):
            if (sig - (3 + l)) % interval == 0:
                u[l][:], y[l][:], hh[l][:] = 0, 0, 0
            v = decay(u[l] - vth * y[l], d_gamma)
            u[l] = wrap24(v + (abuf[l] << ACT_SHIFT))
            y[l] = (u[l] > vth).astype(np.int64)
            psis.append(np.right_shift(np.maximum(one - np.abs(u[l] - vth), 0), P - 1))
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
        local = []
        for l in range(L):
            e = np.zeros(n_out, dtype=np.int64)
            t_u = _sample_step(sig, 4 + l, interval)
            if signal == "tess" and net.window_start <= t_u < T:
                n = sizes[1 + l]
                num = z_buf[l].copy()
                num[labels[sig]] -= n
                e = np.clip(mul_round(num, *mant_shift((1.0 / n) * (1.0 / n_win) / unit_e)),
                            -GRADED_MAX, GRADED_MAX)
            local.append(e)
        pres = [stream[sig].astype(bool)] + [yl.astype(bool) for yl in y]
        new_buf = []
        for l, eng in enumerate(engines):   # spiking phase: weights before this step's update
            a = eng.weights[:, pres[l]].sum(axis=1)
            new_buf.append(a << w_exp[l] if w_exp[l] > 0 else a >> -w_exp[l])
        if reset_traces:
            for l, eng in enumerate(engines):
                if _reset_step(sig, l, interval):
                    eng.reset_traces()
        for l in range(L):
            h_next = ((hh[l] * lam_post) >> 12) + psis[l]
            h_eff = (h_next * lam_post) >> 12 if sp["post_form"] == "paper" else h_next
            hh[l] = h_next
            mag = np.abs(delta[l])
            (m1, k1), (m2, k2) = scales[l]
            y1 = np.minimum((mag * psis[l] * m1) >> k1, TRACE_MAX)
            y2 = np.minimum((mag * h_eff * m2) >> k2, TRACE_MAX)
            engines[l].step(pres[l], y1, y2, delta[l] > 0)
        m, k = m_out
        engines[L].step(pres[L], np.minimum((np.abs(err) * m) >> k, TRACE_MAX),
                        np.zeros(n_out, dtype=np.int64), err > 0)
        abuf = new_buf
        if signal == "dfa":
            delta = [(w @ err) >> pb for w, pb in fb]
        else:
            delta = [((2 * sg.T) @ e) >> 1 for sg, e in zip(signs, local)]
            z_buf = [((2 * sg) @ yl) >> 1 for sg, yl in zip(signs, y)]
    weights = [eng.weights * 2.0 ** -p for eng, p in zip(engines, precs)]
    return np.array(preds[:n_samples]), weights
