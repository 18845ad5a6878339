"""Tests of acecourse.maths.spherical_harmonics against quadrature, scipy and e3nn."""

import math

import numpy as np
import pytest
import scipy.special
import torch
from e3nn import o3

from acecourse.maths.spherical_harmonics import (
    associated_legendre,
    complex_spherical_harmonics,
    complex_to_real_matrix,
    e3nn_to_course_basis,
    irrep_slice,
    real_spherical_harmonics,
    real_spherical_harmonics_torch,
    sphere_quadrature,
)

L_MAX = 8


def _random_directions(n, seed=0):
    v = np.random.default_rng(seed).standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_associated_legendre_matches_scipy():
    x = np.linspace(-1, 1, 41)
    P = associated_legendre(L_MAX, x)
    P_cs = associated_legendre(L_MAX, x, condon_shortley=True)
    for l in range(L_MAX + 1):
        for m in range(l + 1):
            # scipy's lpmv includes the Condon-Shortley phase (-1)^m
            ref = scipy.special.lpmv(m, l, x)
            np.testing.assert_allclose(P_cs[:, l, m], ref, rtol=1e-12, atol=1e-12 * abs(ref).max())
            np.testing.assert_allclose(
                P[:, l, m], (-1) ** m * ref, rtol=1e-12, atol=1e-12 * abs(ref).max()
            )
    assert np.all(P[:, 0, 1:] == 0)


def test_low_degree_closed_forms():
    r = _random_directions(20)
    x, y, z = r.T
    Y = real_spherical_harmonics(2, r * 3.7)  # length must not matter
    c1 = math.sqrt(3 / (4 * math.pi))
    np.testing.assert_allclose(Y[:, 0], 1 / math.sqrt(4 * math.pi), atol=1e-15, rtol=0)
    np.testing.assert_allclose(Y[:, 1:4], c1 * np.stack([y, z, x], 1), atol=1e-15, rtol=0)
    c2 = 0.5 * math.sqrt(15 / math.pi)
    expected = np.stack(
        [
            c2 * x * y,
            c2 * y * z,
            0.25 * math.sqrt(5 / math.pi) * (3 * z**2 - 1),
            c2 * x * z,
            0.5 * c2 * (x**2 - y**2),
        ],
        1,
    )
    np.testing.assert_allclose(Y[:, 4:9], expected, atol=1e-14, rtol=0)


def test_orthonormal_on_quadrature_grid():
    points, weights = sphere_quadrature(2 * L_MAX)
    assert abs(weights.sum() - 4 * math.pi) < 1e-13
    Y = real_spherical_harmonics(L_MAX, points)
    gram = (Y * weights[:, None]).T @ Y
    assert np.abs(gram - np.eye(len(gram))).max() < 1e-12


def test_quadrature_too_coarse_is_detected():
    # a grid exact only to degree 2 L_MAX - 2 cannot integrate Y_Lmax^2: the test above can fail
    points, weights = sphere_quadrature(2 * L_MAX - 2)
    Y = real_spherical_harmonics(L_MAX, points)
    gram = (Y * weights[:, None]).T @ Y
    assert np.abs(gram - np.eye(len(gram))).max() > 1e-3


def test_matches_scipy_after_complex_to_real():
    r = _random_directions(50, seed=1)
    theta = np.arccos(r[:, 2])
    phi = np.mod(np.arctan2(r[:, 1], r[:, 0]), 2 * np.pi)  # scipy wants phi in [0, 2 pi]
    Y = real_spherical_harmonics(L_MAX, r)
    Yc = complex_spherical_harmonics(L_MAX, r)
    for l in range(L_MAX + 1):
        ms = np.arange(-l, l + 1)
        ref = scipy.special.sph_harm_y(l, ms[None, :], theta[:, None], phi[:, None])  # (n, 2l+1)
        U = complex_to_real_matrix(l)
        np.testing.assert_allclose(U @ U.conj().T, np.eye(2 * l + 1), atol=1e-15, rtol=0)
        np.testing.assert_allclose(ref @ U.T, Y[:, irrep_slice(l)], atol=1e-12, rtol=0)
        np.testing.assert_allclose(Yc[:, irrep_slice(l)], ref, atol=1e-12, rtol=0)


def test_addition_theorem():
    r, s = _random_directions(30, 2), _random_directions(30, 3)
    Yr, Ys = real_spherical_harmonics(L_MAX, r), real_spherical_harmonics(L_MAX, s)
    cos = np.sum(r * s, axis=1)
    for l in range(L_MAX + 1):
        lhs = np.sum(Yr[:, irrep_slice(l)] * Ys[:, irrep_slice(l)], axis=1)
        rhs = (2 * l + 1) / (4 * math.pi) * scipy.special.eval_legendre(l, cos)
        np.testing.assert_allclose(lhs, rhs, atol=1e-12, rtol=0)


@pytest.mark.parametrize("normalization", ["integral", "component"])
def test_matches_e3nn_after_basis_change(normalization):
    r = np.random.default_rng(4).standard_normal((40, 3))
    Y = real_spherical_harmonics(L_MAX, r)
    for l in range(L_MAX + 1):
        e = o3.spherical_harmonics(
            l, torch.tensor(r), normalize=True, normalization=normalization
        ).numpy()
        P = e3nn_to_course_basis(l, normalization)
        np.testing.assert_allclose(e @ P.T, Y[:, irrep_slice(l)], atol=1e-12, rtol=0)
    np.testing.assert_allclose(
        e3nn_to_course_basis(1), [[0, 1, 0], [0, 0, 1], [1, 0, 0]], atol=1e-14, rtol=0
    )
    P2 = e3nn_to_course_basis(2)
    np.testing.assert_allclose(P2 @ P2.T, np.eye(5), atol=1e-14, rtol=0)


def test_torch_version_values_and_gradients():
    r = torch.tensor(np.random.default_rng(5).standard_normal((10, 3)), requires_grad=True)
    Yt = real_spherical_harmonics_torch(L_MAX, r)
    np.testing.assert_allclose(
        Yt.detach().numpy(), real_spherical_harmonics(L_MAX, r.detach().numpy()), atol=1e-14, rtol=0
    )
    assert Yt.dtype == torch.float64
    # gradient against a central finite difference
    w = torch.tensor(np.random.default_rng(6).standard_normal(Yt.shape[-1]))
    (grad,) = torch.autograd.grad((Yt @ w).sum(), r)
    h = 1e-6
    r0 = r.detach().numpy()
    fd = np.zeros_like(r0)
    for k in range(3):
        e = np.zeros(3)
        e[k] = h
        fd[:, k] = (
            real_spherical_harmonics(L_MAX, r0 + e) @ w.numpy()
            - real_spherical_harmonics(L_MAX, r0 - e) @ w.numpy()
        ) / (2 * h)
    np.testing.assert_allclose(grad.numpy(), fd, atol=1e-7, rtol=0)
    # smooth at the pole: finite gradient of every harmonic
    pole = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(real_spherical_harmonics_torch(L_MAX, pole).sum(), pole)
    assert torch.isfinite(g).all()


def test_zero_vector_rejected():
    with pytest.raises(ValueError):
        real_spherical_harmonics(2, np.zeros(3))
