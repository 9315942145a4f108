#!/usr/bin/env python3
"""Writes the mesh-graph parity fixture (crates/visage-mesh/tests/fixtures/mesh_graph.json):
the normalised graph Laplacian, Chebyshev graph convolutions (K = 1, 3, 6, with bias) and mesh
up-/down-sampling on a small hand-made mesh, computed in float64 with NumPy.

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install numpy
    /tmp/ref/bin/python tools/parity/mesh_graph.py

The reference is formulated independently of visage's code: the Chebyshev polynomials are
applied spectrally, T_k(L) = Q diag(cos(k arccos(lambda))) Q^T from the eigendecomposition of
the symmetric Laplacian (its eigenvalues lie in [-1, 1]), instead of the three-term recursion
that visage uses; the Laplacian is built from a dense adjacency with explicit loops.

The mesh: a 4 x 4 grid of vertices (vertex r * 4 + c at x = c, y = r), two triangles per cell
(18 triangles), plus one isolated vertex (16) that no triangle uses. The coarse level keeps the
vertices at rows and columns {0, 2, 3} (a 3 x 3 grid, 8 triangles); every fine vertex is
up-sampled from the barycentric coordinates of the coarse triangle it lies in (the isolated
vertex copies coarse vertex 0).
"""
import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "visage-mesh", "tests",
                   "fixtures", "mesh_graph.json")


def grid_triangles(rows, cols, index):
    """Two counter-clockwise triangles per cell of a rows x cols vertex grid."""
    tris = []
    for r in range(rows - 1):
        for c in range(cols - 1):
            a, b = index(r, c), index(r, c + 1)
            d, e = index(r + 1, c), index(r + 1, c + 1)
            tris.append([a, b, e])
            tris.append([a, e, d])
    return tris


def laplacian(n, triangles):
    adjacency = np.zeros((n, n))
    for tri in triangles:
        for i in range(3):
            for j in range(3):
                if i != j:
                    adjacency[tri[i], tri[j]] = 1.0
    degree = adjacency.sum(axis=1)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if adjacency[i, j] > 0:
                out[i, j] = -adjacency[i, j] / np.sqrt(degree[i] * degree[j])
    return out


def chebyshev_spectral(lap, k):
    """[T_0(L), ..., T_{k-1}(L)] from the eigendecomposition."""
    values, vectors = np.linalg.eigh(lap)
    assert np.all(np.abs(values) <= 1.0 + 1e-9), values
    theta = np.arccos(np.clip(values, -1.0, 1.0))
    return [vectors @ np.diag(np.cos(j * theta)) @ vectors.T for j in range(k)]


def cheb_conv(x, lap, weight, bias):
    """x [M, V, Cin], weight [K, Cin, Cout], bias [Cout] -> [M, V, Cout]."""
    polys = chebyshev_spectral(lap, weight.shape[0])
    out = np.zeros((x.shape[0], x.shape[1], weight.shape[2]))
    for m in range(x.shape[0]):
        for k, t in enumerate(polys):
            out[m] += t @ x[m] @ weight[k]
    return out + bias


def barycentric(p, a, b, c):
    m = np.array([[a[0] - c[0], b[0] - c[0]], [a[1] - c[1], b[1] - c[1]]])
    l1, l2 = np.linalg.solve(m, np.array([p[0] - c[0], p[1] - c[1]]))
    return np.array([l1, l2, 1.0 - l1 - l2])


def main():
    rng = np.random.default_rng(20240614)

    fine_n = 17
    fine_xy = [(c, r) for r in range(4) for c in range(4)] + [(9.0, 9.0)]
    fine_tris = grid_triangles(4, 4, lambda r, c: r * 4 + c)

    keep_rc = [0, 2, 3]
    down = [r * 4 + c for r in keep_rc for c in keep_rc]
    coarse_n = len(down)
    coarse_xy = [fine_xy[i] for i in down]
    coarse_tris = grid_triangles(3, 3, lambda r, c: r * 3 + c)

    sources = []
    up = np.zeros((fine_n, coarse_n))
    for v in range(fine_n):
        if v in down:
            idx, w = [down.index(v)] * 3, np.array([1.0, 0.0, 0.0])
        elif v == 16:
            idx, w = [0, 0, 0], np.array([1.0, 0.0, 0.0])
        else:
            for tri in coarse_tris:
                w = barycentric(fine_xy[v], *[coarse_xy[t] for t in tri])
                if np.all(w >= -1e-12):
                    idx = list(tri)
                    break
            else:
                raise AssertionError(f"vertex {v} outside the coarse mesh")
        w = np.round(w, 6) + 0.0
        w[2] = 1.0 - w[0] - w[1]
        sources.append([idx, w.tolist()])
        for i, wi in zip(idx, w):
            up[v, i] += wi

    lap_fine = laplacian(fine_n, fine_tris)
    lap_coarse = laplacian(coarse_n, coarse_tris)

    batch, c_in, c_out = 2, 3, 4
    x = rng.uniform(-1.0, 1.0, (batch, fine_n, c_in))
    x_coarse = rng.uniform(-1.0, 1.0, (batch, coarse_n, c_in))

    cases = []
    for k in (1, 3, 6):
        limit = np.sqrt(6.0 / (c_in + c_out))
        weight = rng.uniform(-limit, limit, (k, c_in, c_out))
        bias = rng.uniform(-0.5, 0.5, c_out)
        cases.append({
            "k": k,
            "weight": weight.ravel().tolist(),
            "bias": bias.tolist(),
            "expected": cheb_conv(x, lap_fine, weight, bias).ravel().tolist(),
        })

    fixture = {
        "about": "tools/parity/mesh_graph.py: float64 NumPy reference (spectral Chebyshev)",
        "fine": {"vertex_count": fine_n, "triangles": fine_tris},
        "coarse": {"vertex_count": coarse_n, "triangles": coarse_tris},
        "down": down,
        "up": {"fine": fine_n, "coarse": coarse_n, "sources": sources},
        "laplacian_fine": lap_fine.ravel().tolist(),
        "laplacian_coarse": lap_coarse.ravel().tolist(),
        "batch": batch,
        "in_channels": c_in,
        "out_channels": c_out,
        "x": x.ravel().tolist(),
        "x_coarse": x_coarse.ravel().tolist(),
        "up_expected": np.einsum("fc,mci->mfi", up, x_coarse).ravel().tolist(),
        "down_expected": x[:, down, :].ravel().tolist(),
        "cheb": cases,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
