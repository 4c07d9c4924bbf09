"""A numpy re-simulation of the Lava graph of lava_local.networks.graph, built from the
functional core with the graph's timing (one-step Dense delays, per-layer reset offsets,
the DFA learning path). Used to check the Lava float graph, learning included."""

import numpy as np

from lava_local.functional import (
    LIFState,
    get_surrogate,
    lif_step,
    noncausal_trace,
    post_trace_step,
    pre_trace_step,
    stllr_update,
)
from lava_local.functional._backend import softmax


def simulate_graph(net, dataset, n_samples, eta, feedback, learn=True):
    sp = net.params
    L, T = net.n_hidden, net.n_steps
    interval = T + L + 2
    n_run = n_samples * interval + 2
    W = [w.copy() for w in net.weights]
    psi_f = get_surrogate(net.surrogate)
    n_in, n_out = W[0].shape[1], W[-1].shape[0]
    stream = np.zeros((n_run + 1, n_in))
    labels = np.zeros(n_run + 1, dtype=int)
    for k in range(n_samples):
        x, y = dataset[k]
        for t in range(interval):
            s = k * interval + 2 + t
            if s <= n_run:
                if t < T:
                    stream[s] = x[t]
                labels[s] = y
    abuf = [np.zeros(w.shape[0]) for w in W]
    st = [LIFState(np.zeros(w.shape[0]), np.zeros(w.shape[0])) for w in W[:-1]]
    h = [np.zeros(w.shape[0]) for w in W[:-1]]
    x1 = [np.zeros(w.shape[1]) for w in W]  # the last one is the readout's κ-trace
    fb_buf = [np.zeros(w.shape[0]) for w in W[:-1]]
    o, acc, preds = np.zeros(n_out), np.zeros(n_out), []
    for sig in range(1, n_run + 1):
        for l in range(L):
            if (sig - (3 + l)) % interval == 0:
                st[l] = LIFState(np.zeros_like(st[l].u), np.zeros_like(st[l].u))
                h[l][:] = 0
            st[l] = lif_step(st[l], abuf[l], net.gamma, net.v_th)
        t_ro = (sig - (3 + L)) % interval if sig >= 3 + L else -1
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
            err /= T - net.window_start
        pres = [stream[sig]] + [s.y for s in st]
        new_buf = [W[l] @ pres[l] for l in range(L + 1)]
        for l in range(L):
            psi = psi_f(st[l].u, net.v_th)
            h_next = post_trace_step(h[l], psi, sp["lam_post"])
            q_prev, x1[l] = x1[l], pre_trace_step(x1[l], pres[l], sp["lam_pre"])
            if learn:
                g = stllr_update(fb_buf[l], psi, q_prev,
                                 noncausal_trace(h_next, sp["lam_post"], sp["post_form"]),
                                 pres[l], sp["alpha_pre"], sp["alpha_post"])
                W[l] = W[l] - eta * g
            h[l] = h_next
        # readout synapses: exact local gradient, error of this step × κ-trace up to t-1
        q_prev, x1[L] = x1[L], pre_trace_step(x1[L], pres[L], net.kappa)
        if learn:
            W[L] = W[L] - eta * np.outer(err, q_prev)
        abuf = new_buf
        fb_buf = [b @ err for b in feedback] if learn else fb_buf
    return np.array(preds[:n_samples]), W
