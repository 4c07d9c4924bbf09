"""A numpy re-simulation of SOLSA's Lava graph (``learn="solsa"``, float), built from
SOLSA's equations (:mod:`lava_local.functional.solsa`) with the graph's timing: filters
pass psp on in the step they get the spikes, Dense synapses delay by one step, the
eligibility e_ij lives in the synapse and is updated from psp[t+1] and ε[t] while the
neuron is at step t, the output layer's δ pairs with e[t], the signal flows back through
fixed Dense(Wᵀ) copies and the filters (3 steps per layer), α and β adapt by SGD in the
filters, and every eligibility restarts from zero at a sample's first step."""

import numpy as np

from lava_local.functional.solsa import (
    gaussian_surrogate,
    psp_step,
    solsa_eligibility_step,
    solsa_output_signal,
)
from lava_local.rules.solsa import SOLSAParams


def simulate_solsa_graph(net, dataset, n_samples, eta, record_tags=False):
    """Predictions, weights and filters after learning (and, with ``record_tags``, the
    output layer's eligibility after every graph step)."""
    p = SOLSAParams.from_flat(net.params, strict=False)
    W = [w.copy() for w in net.weights]
    W_back = [w.T.copy() for w in net.weights]
    alpha = [np.array(a, dtype=float) for a, _ in net.filters]
    beta = [np.array(b, dtype=float) for _, b in net.filters]
    L, T, t_l = len(W), net.n_steps, net.window_start
    lam, theta = net.gamma, net.v_th
    lags = [3 * (L - 1 - l) for l in range(L)]
    interval = T + L + 2 + lags[0] + 3
    sched = net.matrices.get("schedule")
    schedule = (set(int(t) for t in np.ravel(sched)) if sched is not None and p.topk
                else set(range(t_l, T)))
    n_run = n_samples * interval + 2
    n_in = net.layer_sizes[0]
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
    decay_x1 = np.exp(-1.0 / 2.0 ** 40)

    def step_of(sig, offset):
        return (sig - offset) % interval if sig >= offset else -1

    psp = [np.zeros(w.shape[1]) for w in W]
    hist = [[] for _ in W]
    fwd = [np.zeros(w.shape[1]) for w in W]
    abuf = [np.zeros(w.shape[0]) for w in W]
    bbuf = [np.zeros(w.shape[1]) for w in W]
    v = [np.zeros(w.shape[0]) for w in W]
    s = [np.zeros(w.shape[0]) for w in W]
    eps_hist = [[] for _ in W]
    elig = [np.zeros(w.shape) for w in W]
    x1 = [np.zeros(w.shape[1]) for w in W]
    n_out = W[-1].shape[0]
    counts, counts_win, vsum = np.zeros(n_out), np.zeros(n_out), np.zeros(n_out)
    active, preds, tags = True, [], []
    for sig in range(1, n_run + 1):
        fwd_old = [f.copy() for f in fwd]
        new_abuf, new_bbuf, payload, deltas, epss = [], [], [], [], []
        src = stream[sig]
        for l in range(L):
            # filter l: the spikes of this step, the back signal sent last step
            if step_of(sig, 2 + l) == 0:
                psp[l] = np.zeros_like(psp[l])
            hist[l].append((psp[l].copy(), src.copy()))
            if len(hist[l]) > lags[l] + 3:
                hist[l].pop(0)
            psp[l] = psp_step(psp[l], src, alpha[l], beta[l])
            payload.append(psp[l].copy())
            back = bbuf[l]
            fwd[l] = back * beta[l]
            if len(hist[l]) == lags[l] + 3:
                pp, ss = hist[l][0]
                ga, gb = back * pp, back * ss
                if alpha[l].shape[0] == 1:
                    ga, gb = ga.sum(keepdims=True), gb.sum(keepdims=True)
                alpha[l] = np.clip(alpha[l] - eta * ga, 0.0, 1.0)
                beta[l] = beta[l] - eta * gb
            new_abuf.append(W[l] @ psp[l])
            # neuron l: the Dense's output of last step, the signal of filter l+1
            t = step_of(sig, 3 + l)
            if t == 0:
                v[l], s[l] = np.zeros_like(v[l]), np.zeros_like(s[l])
                eps_hist[l] = []
            vn = lam * v[l] + abuf[l] - theta * s[l]
            v[l], s[l] = vn, (vn > theta).astype(float)
            eps = gaussian_surrogate(vn, theta, p.sigma)
            eps_hist[l].append(eps)
            if len(eps_hist[l]) > lags[l] + 1:
                eps_hist[l].pop(0)
            delta = np.zeros_like(vn)
            if l == L - 1:
                if t == 0:
                    counts[:], counts_win[:], vsum[:] = 0, 0, 0
                    active = True
                if 0 <= t < T:
                    counts += s[l]
                    if t >= t_l:
                        counts_win += s[l]
                        vsum += vn
                if t == T - 1:
                    preds.append(int(np.argmax(counts_win + 1e-3 * np.tanh(
                        vsum / max(1, T - t_l)))))
                if 0 <= t < T and t >= t_l:
                    if active and t in schedule:
                        onehot = np.eye(n_out)[labels[sig]]
                        delta = solsa_output_signal(s[l], onehot, eps)
                    if p.early_stop and active and counts.sum() > 0 and \
                            int(np.argmax(counts)) == labels[sig] and \
                            counts.max() / counts.sum() >= p.confidence:
                        active = False
            elif len(eps_hist[l]) == lags[l] + 1:
                delta = fwd_old[l + 1] * eps_hist[l][0]
            deltas.append(delta)
            epss.append(eps)
            src = s[l]
        # learning phase of every synapse layer
        for l in range(L):
            if step_of(sig, 2 + l) == 0:
                x1[l] = np.zeros_like(x1[l])
            nz = payload[l] != 0
            x1[l][nz] = payload[l][nz] / 2
            x1[l] = x1[l] * decay_x1
            restart = step_of(sig + 1, 3 + l) == 0
            factor = np.ones_like(epss[l]) if restart else 1 - lam + theta * epss[l]
            W[l] = W[l] - eta * deltas[l][:, None] * elig[l]
            elig[l] = elig[l] + 2 * x1[l][None, :] - factor[:, None] * elig[l]
            new_bbuf.append(W_back[l] @ deltas[l])
        if record_tags:
            tags.append(elig[-1].copy())
        abuf, bbuf = new_abuf, new_bbuf
    out = (np.array(preds[:n_samples]), W, list(zip(alpha, beta)))
    return out + (tags,) if record_tags else out


def functional_eligibility(net, dataset, sample, steps):
    """The output layer's eligibility e[t] of one sample by SOLSA's equations, forward
    in time (the batched trainer's recursion): e[t] = (λ − θ ε[t−1]) e[t−1] + psp[t]."""
    p = SOLSAParams.from_flat(net.params, strict=False)
    x, _ = dataset[sample]
    L = len(net.weights)
    psp = [np.zeros(w.shape[1]) for w in net.weights]
    v = [np.zeros(w.shape[0]) for w in net.weights]
    s = [np.zeros(w.shape[0]) for w in net.weights]
    e = np.zeros(net.weights[-1].shape)
    eps_prev = np.zeros(net.weights[-1].shape[0])
    out = []
    for t in range(steps):
        inp = x[t]
        for l, w in enumerate(net.weights):
            a, b = net.filters[l]
            psp[l] = psp_step(psp[l], inp, a, b)
            v[l] = net.gamma * v[l] + w @ psp[l] - net.v_th * s[l]
            s[l] = (v[l] > net.v_th).astype(float)
            inp = s[l]
        e = solsa_eligibility_step(e, eps_prev, psp[L - 1], net.gamma, net.v_th)
        eps_prev = gaussian_surrogate(v[L - 1], net.v_th, p.sigma)
        out.append(e.copy())
    return out


def simulate_fixed_solsa_graph(net, dataset, n_samples, eta, rng_seed=0):
    """The fixed-point SOLSA graph in integers written out here (filters in Q16 with
    8-bit psp payloads, 24-bit membranes, the ε table, 8-bit δ, 7-bit third factors,
    fixed back projections) with our model of the bit-approximate engine running
    OnChipSOLSA on graded spikes: predictions, weights and filters (real units)."""
    from lava_local.fixed import (
        ACT_SHIFT,
        decay,
        decay_to_int,
        mant_shift,
        mul_round,
        quantize_weights,
        to_membrane,
        weight_precision,
        wrap24,
    )
    from lava_local.processes.solsa import eps_table, y2_constants
    from lava_local.rules.solsa import PSP_BITS, OnChipSOLSA, delta_unit
    from lava_local.rules.stllr_loihi import FixedEngineReference

    p = SOLSAParams.from_flat(net.params, strict=False)
    L, T, t_l = len(net.weights), net.n_steps, net.window_start
    lam, theta = net.gamma, net.v_th
    lags = [3 * (L - 1 - l) for l in range(L)]
    interval = T + L + 2 + lags[0] + 3
    sched = net.matrices.get("schedule")
    schedule = (set(int(t) for t in np.ravel(sched)) if sched is not None and p.topk
                else set(range(t_l, T)))
    precs = [weight_precision(w) for w in net.weights]
    P = max(precs)
    w_exp = [P - pr - PSP_BITS for pr in precs]
    n_out = net.layer_sizes[-1]
    du = delta_unit(n_out, p.sigma)
    rules = [OnChipSOLSA(eta=eta, lam=lam, theta=theta, mode="fixed", weight_precision=pr,
                         delta_max=127 * du) for pr in precs]
    engines = [FixedEngineReference(quantize_weights(w, pr), r, rng_seed + l)
               for l, (w, pr, r) in enumerate(zip(net.weights, precs, rules))]
    backs = []
    for w in net.weights:
        pb = weight_precision(w.T)
        backs.append((quantize_weights(w.T, pb).astype(np.int64), pb))
    alpha = [np.rint(np.asarray(a) * 65536).astype(np.int64) for a, _ in net.filters]
    beta = [np.rint(np.asarray(b) * 65536).astype(np.int64) for _, b in net.filters]
    ma = mant_shift(eta * du * 2.0 ** (16 - PSP_BITS))
    mb = mant_shift(eta * du * 2.0 ** 16)
    d_lam, th = decay_to_int(lam), int(to_membrane(theta, P))
    table, shift = eps_table(p.sigma, theta, P)
    ya, yb = y2_constants(lam, theta, p.sigma)
    eps_unit = 1.0 / (np.sqrt(2 * np.pi) * p.sigma) / 127
    m_out, m_hid = mant_shift(2.0 / n_out * eps_unit / du), mant_shift(eps_unit)
    m1 = [mant_shift(du / r.s1) for r in rules]
    n_run = n_samples * interval + 2
    stream = np.zeros((n_run + 1, net.layer_sizes[0]), dtype=np.int64)
    labels = np.zeros(n_run + 1, dtype=int)
    for k in range(n_samples):
        x, y = dataset[k]
        for t in range(interval):
            sg = k * interval + 2 + t
            if sg <= n_run:
                if t < T:
                    stream[sg] = x[t]
                labels[sg] = y

    def step_of(sig, offset):
        return (sig - offset) % interval if sig >= offset else -1

    sizes = net.layer_sizes
    psp = [np.zeros(n, dtype=np.int64) for n in sizes[:-1]]
    hist = [[] for _ in range(L)]
    fwd = [np.zeros(n, dtype=np.int64) for n in sizes[:-1]]
    abuf = [np.zeros(n, dtype=np.int64) for n in sizes[1:]]
    bbuf = [np.zeros(n, dtype=np.int64) for n in sizes[:-1]]
    v = [np.zeros(n, dtype=np.int64) for n in sizes[1:]]
    s = [np.zeros(n, dtype=np.int64) for n in sizes[1:]]
    eps_hist = [[] for _ in range(L)]
    counts, counts_win, vsum = (np.zeros(n_out, dtype=np.int64) for _ in range(3))
    active, preds = True, []
    for sig in range(1, n_run + 1):
        fwd_old = [f.copy() for f in fwd]
        new_abuf, payloads, deltas, y1s, y2s = [], [], [], [], []
        src = stream[sig]
        for l in range(L):
            if step_of(sig, 2 + l) == 0:
                psp[l][:] = 0
            hist[l].append((psp[l].copy(), src.copy()))
            if len(hist[l]) > lags[l] + 3:
                hist[l].pop(0)
            psp[l] = np.clip(((psp[l] * alpha[l]) >> 16) + ((beta[l] * src) >> (16 - PSP_BITS)),
                             0, 255)
            payloads.append(psp[l].copy())
            back = bbuf[l]
            fwd[l] = (back * beta[l]) >> 16
            if len(hist[l]) == lags[l] + 3:
                pp, ss = hist[l][0]
                ga, gb = back * pp, back * ss
                if alpha[l].shape[0] == 1:
                    ga, gb = ga.sum(keepdims=True), gb.sum(keepdims=True)
                alpha[l] = np.clip(alpha[l] - mul_round(ga, *ma), 0, 65536)
                beta[l] = beta[l] - mul_round(gb, *mb)
            acc = engines[l].weights @ psp[l]
            new_abuf.append(acc << w_exp[l] if w_exp[l] >= 0 else acc >> -w_exp[l])
            t = step_of(sig, 3 + l)
            if t == 0:
                v[l][:], s[l][:] = 0, 0
                eps_hist[l] = []
            vn = wrap24(decay(v[l], d_lam) + (abuf[l] << ACT_SHIFT) - th * s[l])
            v[l], s[l] = vn, (vn > th).astype(np.int64)
            eps = table[np.minimum(np.abs(vn - th) >> shift, 255)]
            eps_hist[l].append(eps)
            if len(eps_hist[l]) > lags[l] + 1:
                eps_hist[l].pop(0)
            delta = np.zeros_like(vn)
            if l == L - 1:
                if t == 0:
                    counts[:], counts_win[:], vsum[:] = 0, 0, 0
                    active = True
                if 0 <= t < T:
                    counts += s[l]
                    if t >= t_l:
                        counts_win += s[l]
                        vsum += vn
                if t == T - 1:
                    preds.append(max(range(n_out), key=lambda i: (counts_win[i], vsum[i])))
                if 0 <= t < T and t >= t_l:
                    if active and t in schedule:
                        err = s[l].copy()
                        err[labels[sig]] -= 1
                        delta = np.clip(mul_round(err * eps, *m_out), -127, 127)
                    if p.early_stop and active and counts.sum() > 0 and \
                            int(np.argmax(counts)) == labels[sig] and \
                            counts.max() / counts.sum() >= p.confidence:
                        active = False
            elif len(eps_hist[l]) == lags[l] + 1:
                delta = np.clip(mul_round(fwd_old[l + 1] * eps_hist[l][0], *m_hid), -127, 127)
            deltas.append(delta)
            mk, kk = m1[l]
            y1s.append(np.minimum((np.abs(delta) * mk) >> kk, 127))
            restart = step_of(sig + 1, 3 + l) == 0
            y2s.append(np.full_like(eps, 64) if restart
                       else np.minimum((ya + yb * eps + 2048) >> 12, 127))
            src = s[l]
        new_bbuf = []
        for l in range(L):
            if step_of(sig, 2 + l) == 0:
                engines[l].reset_traces()
            engines[l].step(None, y1s[l], y2s[l], deltas[l] > 0, payload=payloads[l])
            wb, pb = backs[l]
            new_bbuf.append((wb @ deltas[l]) >> pb)
        abuf, bbuf = new_abuf, new_bbuf
    weights = [eng.weights * 2.0 ** -pr for eng, pr in zip(engines, precs)]
    filters = [(a * 2.0 ** -16, b * 2.0 ** -16) for a, b in zip(alpha, beta)]
    return np.array(preds[:n_samples]), weights, filters
