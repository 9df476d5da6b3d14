"""NumPy references of the optimizers, written literally from API.md.

Each function maps (w, g_sequence, **hyper) to the list of weights after
every step, in float64. `t` is 0-based unless said otherwise.
"""

import numpy as np


def sgd(w, grads, learning_rate):
    out = []
    for g in grads:
        w = w - learning_rate * g
        out.append(w)
    return out


def momentum(w, grads, learning_rate, momentum, ema=False, nesterov=False):
    v = np.zeros_like(w)
    out = []
    for g in grads:
        if not ema:  # v ← λv − ηg; w ← w + v
            v = momentum * v - learning_rate * g
            w = w + (momentum * v - learning_rate * g if nesterov else v)
        else:  # v ← βv + (1−β)g; w ← w − ηv
            v = momentum * v + (1 - momentum) * g
            d = momentum * v + (1 - momentum) * g if nesterov else v
            w = w - learning_rate * d
        out.append(w)
    return out


def adagrad(w, grads, learning_rate, epsilon, initial_accumulator_value=0.0):
    s = np.full_like(w, initial_accumulator_value)
    out = []
    for g in grads:  # s ← s + g²; w ← w − η g / √(s + ε)
        s = s + g**2
        w = w - learning_rate * g / np.sqrt(s + epsilon)
        out.append(w)
    return out


def adagrad_slide_form(w, grads, learning_rate):
    """The slide's wᵗ⁺¹ = wᵗ − (ηᵗ/σᵗ) gᵗ, ηᵗ = η/√(t+1), σᵗ = RMS."""
    out, past = [], []
    for t, g in enumerate(grads):
        past.append(g)
        eta_t = learning_rate / np.sqrt(t + 1)
        sigma_t = np.sqrt(np.mean(np.square(past), axis=0))
        w = w - eta_t / sigma_t * g
        out.append(w)
    return out


def rmsprop(w, grads, learning_rate, rho, epsilon, init_with_first_gradient):
    s = np.zeros_like(w)
    out = []
    for t, g in enumerate(grads):
        if t == 0 and init_with_first_gradient:  # σ⁰ = g⁰
            s = g**2
        else:
            s = rho * s + (1 - rho) * g**2
        w = w - learning_rate * g / np.sqrt(s + epsilon)
        out.append(w)
    return out


def adam(w, grads, learning_rate, beta_1, beta_2, epsilon, amsgrad=False):
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    v_hat_max = np.zeros_like(w)
    out = []
    for t, g in enumerate(grads, start=1):
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g**2
        m_hat = m / (1 - beta_1**t)
        v_hat = v / (1 - beta_2**t)
        if amsgrad:
            v_hat_max = np.maximum(v_hat_max, v_hat)
            v_hat = v_hat_max
        w = w - learning_rate * m_hat / (np.sqrt(v_hat) + epsilon)
        out.append(w)
    return out
