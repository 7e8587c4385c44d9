// Closed-form uniform B-spline pieces shared by the C++ kernels (fused_kan.cpp, sparse_*.cpp).
//
// With u = (x - t0) / h, span = floor(u), f = u - span, the k + 1 live bases (or their
// derivatives in f) are polynomials in f whose coefficients are the (k + 1, k + 1) matrix m
// (rows: powers of f). span is -1 below the knots and n_int (the number of knot intervals)
// from the last knot on; NaN inputs get -1.
#pragma once

#include <torch/all.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace kanlab_basis {

// Per-input grid constants: u = x * ih + c.
template <typename T>
void grid_constants(const torch::Tensor& grid, std::vector<T>& ih, std::vector<T>& c) {
  const int64_t n_in = grid.size(0), nk = grid.size(1);
  const T* g = grid.data_ptr<T>();
  ih.resize(n_in);
  c.resize(n_in);
  for (int64_t i = 0; i < n_in; ++i) {
    ih[i] = T(1) / (g[i * nk + 1] - g[i * nk]);
    c[i] = -g[i * nk] * ih[i];
  }
}

// Weight j (0 <= j <= k) of the k + 1 live bases at fractional position f: the polynomial
// sum_p f^p m[p, j] by Horner. The one evaluation of the closed form every kernel uses.
template <typename T>
inline __attribute__((always_inline)) T basis_weight(const T* __restrict m, int k, int j, T f) {
  T acc = m[k * (k + 1) + j];
  for (int p = k - 1; p >= 0; --p) acc = acc * f + m[p * (k + 1) + j];
  return acc;
}

// Vectorisable over a row: span[i] in [-1, n_int] (NaN -> -1) and the k + 1 weights
// w[j * n_in + i] (basis_weight). KT = k when known at compile time (then m is copied to a
// local array: no aliasing with w, the loop vectorises), 0 for any k.
template <typename T, int KT>
void row_weights(const T* __restrict x, int64_t n_in, int k, int n_int, const T* __restrict ih,
                 const T* __restrict c, const T* m_in, T* __restrict span, T* __restrict w) {
  constexpr int KM = KT > 0 ? KT : 1;
  const int kk = KT > 0 ? KT : k;
  T mk[(KM + 1) * (KM + 1)];
  if (KT > 0) std::copy(m_in, m_in + (KM + 1) * (KM + 1), mk);
  const T* __restrict m = KT > 0 ? mk : m_in;
  const T top = T(n_int);
  for (int64_t i = 0; i < n_in; ++i) {
    const T u = x[i] * ih[i] + c[i];
    T s = std::floor(u);
    const T f = u - s;
    s = u >= T(0) ? s : T(-1);
    span[i] = u < top ? s : top;
    for (int j = 0; j <= kk; ++j) w[j * n_in + i] = basis_weight(m, kk, j, f);
  }
}

// The arguments every fused kernel takes: x (N, n_in) and b = b(x) or b'(x) like it, float32
// or float64 on the CPU; grid (n_in, n_knots) and the (k + 1, k + 1) polynomial matrix m.
inline void check_inputs(const torch::Tensor& x, const torch::Tensor& b, const torch::Tensor& grid,
                         const torch::Tensor& m, int64_t k) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 2 && x.is_contiguous(), "x: contiguous 2-D CPU tensor");
  TORCH_CHECK(x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble, "x: float32 or float64");
  TORCH_CHECK(b.sizes() == x.sizes() && b.is_contiguous() && b.scalar_type() == x.scalar_type(),
              "base values / derivatives: contiguous, like x");
  TORCH_CHECK(grid.dim() == 2 && grid.size(0) == x.size(1) && grid.is_contiguous(), "grid: (n_in, n_knots)");
  TORCH_CHECK(grid.scalar_type() == x.scalar_type() && m.scalar_type() == x.scalar_type(), "dtypes differ");
  TORCH_CHECK(k >= 1 && grid.size(1) > 2 * k + 1, "spline order / grid size");
  TORCH_CHECK(m.is_contiguous() && m.numel() == (k + 1) * (k + 1), "m: (k+1, k+1)");
}

// Runs fn(r0, r1) over row blocks on at most at::get_num_threads() OpenMP threads.
template <typename F>
void over_rows(int64_t n_rows, int64_t row_cost, F fn) {
  const int64_t want = n_rows * row_cost / 32768 + 1;
  const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), want)));
  if (nt == 1) { fn(int64_t(0), n_rows); return; }
#pragma omp parallel num_threads(nt)
  {
    const int64_t t = omp_get_thread_num(), n_threads = omp_get_num_threads();
    const int64_t chunk = (n_rows + n_threads - 1) / n_threads;
    const int64_t r0 = std::min(n_rows, t * chunk), r1 = std::min(n_rows, r0 + chunk);
    if (r0 < r1) fn(r0, r1);
  }
}

}  // namespace kanlab_basis
