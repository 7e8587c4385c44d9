// Fused CPU kernels for the dense KAN path on uniform grids (kanlab.kernels.fused).
// Registered as torch.ops.kanlab.packed_input / input_grad.
//
// packed_input: x, b = b(x) (N, n_in) -> a (N, n_in * P), P = nb + 1, in ONE pass per row: the
//   row is zeroed, then per input its base value b(x) (column i P) and its k + 1 live
//   closed-form B-spline values (columns i P + 1 + span - k + j) are written (a NaN for a
//   NaN / inf input).
// input_grad:  gp = dL/da (N, n_in * P), x, b'(x) -> dL/dx (N, n_in), in ONE pass per row:
//   gx[n, i] = gp[n, i P] b'(x) + sum_j gp[n, i P + 1 + span - k + j] dB_j(x).
// The closed form: with u = (x - t0) / h, span = floor(u), f = u - span, the weights are
// polynomials in f whose coefficients are the (k + 1, k + 1) matrix m (rows: powers of f).
// The base activation and its derivative come from torch (vectorised, any activation).
// Rows are split across at::get_num_threads() OpenMP threads (torch.set_num_threads applies).
#include <torch/all.h>
#include <torch/library.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "uniform_basis.h"

namespace {

using kanlab_basis::grid_constants;
using kanlab_basis::over_rows;
using kanlab_basis::row_weights;

template <typename T, int KT>
void packed_rows(const T* x, const T* b, T* a, int64_t r0, int64_t r1, int64_t n_in, int k,
                 int n_int, const T* ih, const T* c, const T* m) {
  const int kk = KT > 0 ? KT : k;
  const int64_t P = n_int - kk + 1;
  std::vector<T> buf((kk + 2) * n_in);
  T* span = buf.data();
  T* w = span + n_in;
  for (int64_t n = r0; n < r1; ++n) {
    T* ar = a + n * n_in * P;
    row_weights<T, KT>(x + n * n_in, n_in, kk, n_int, ih, c, m, span, w);
    std::fill(ar, ar + n_in * P, T(0));
    const T* br = b + n * n_in;
    for (int64_t i = 0; i < n_in; ++i) {
      T* col = ar + i * P;
      col[0] = br[i];
      const int s = static_cast<int>(span[i]);
      if (s >= kk && s < n_int - kk) {  // interior: all k + 1 bases exist (unrolled when KT > 0)
        T* dst = col + 1 + s - kk;
        for (int j = 0; j <= kk; ++j) dst[j] = w[j * n_in + i];
        continue;
      }
      if (s < 0 || s >= n_int) {  // outside the knots: no bases, but a NaN / inf input (NaN
        if (std::isnan(w[i])) col[1] = w[i];  // weights) makes its row NaN, as the reference does
        continue;
      }
      const int lo = std::max(0, kk - s), hi = std::min(kk + 1, n_int - s);
      T* dst = col + 1 + s - kk;
      for (int j = lo; j < hi; ++j) dst[j] = w[j * n_in + i];
    }
  }
}

template <typename T, int KT>
void grad_rows(const T* gp, const T* x, const T* db, T* gx, int64_t r0, int64_t r1, int64_t n_in,
               int k, int n_int, const T* ih, const T* c, const T* md) {
  const int kk = KT > 0 ? KT : k;
  const int64_t P = n_int - kk + 1;
  std::vector<T> buf((kk + 2) * n_in);
  T* span = buf.data();
  T* w = span + n_in;
  for (int64_t n = r0; n < r1; ++n) {
    const T* gr = gp + n * n_in * P;
    const T* dbr = db + n * n_in;
    T* out = gx + n * n_in;
    row_weights<T, KT>(x + n * n_in, n_in, kk, n_int, ih, c, md, span, w);
    for (int64_t i = 0; i < n_in; ++i) {
      const T* col = gr + i * P;
      T acc = col[0] * dbr[i];
      const int s = static_cast<int>(span[i]);
      if (s >= kk && s < n_int - kk) {  // interior: all k + 1 bases exist
        const T* src = col + 1 + s - kk;
        T sum = T(0);
        for (int j = 0; j <= kk; ++j) sum += src[j] * w[j * n_in + i];
        acc += sum * ih[i];
      } else if (s >= 0 && s < n_int) {
        const int lo = std::max(0, kk - s), hi = std::min(kk + 1, n_int - s);
        const T* src = col + 1 + s - kk;
        T sum = T(0);
        for (int j = lo; j < hi; ++j) sum += src[j] * w[j * n_in + i];
        acc += sum * ih[i];
      }
      out[i] = acc;
    }
  }
}

}  // namespace

torch::Tensor packed_input(torch::Tensor x, torch::Tensor b, torch::Tensor grid, torch::Tensor m, int64_t k) {
  kanlab_basis::check_inputs(x, b, grid, m, k);
  const int64_t N = x.size(0), n_in = x.size(1);
  const int n_int = static_cast<int>(grid.size(1) - 1);
  const int64_t P = n_int - k + 1;
  auto a = torch::empty({N, n_in * P}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "packed_input", [&] {
    std::vector<scalar_t> ih, c;
    grid_constants<scalar_t>(grid, ih, c);
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* bp = b.data_ptr<scalar_t>();
    scalar_t* ap = a.data_ptr<scalar_t>();
    const scalar_t* mp = m.data_ptr<scalar_t>();
    over_rows(N, n_in * P, [&](int64_t r0, int64_t r1) {
      if (k == 3) packed_rows<scalar_t, 3>(xp, bp, ap, r0, r1, n_in, 3, n_int, ih.data(), c.data(), mp);
      else packed_rows<scalar_t, 0>(xp, bp, ap, r0, r1, n_in, k, n_int, ih.data(), c.data(), mp);
    });
  });
  return a;
}

torch::Tensor input_grad(torch::Tensor gp, torch::Tensor x, torch::Tensor db, torch::Tensor grid,
                         torch::Tensor md, int64_t k) {
  kanlab_basis::check_inputs(x, db, grid, md, k);
  const int64_t N = x.size(0), n_in = x.size(1);
  const int n_int = static_cast<int>(grid.size(1) - 1);
  const int64_t P = n_int - k + 1;
  TORCH_CHECK(gp.is_contiguous() && gp.scalar_type() == x.scalar_type() && gp.dim() == 2 &&
              gp.size(0) == N && gp.size(1) == n_in * P, "gp: contiguous (N, n_in * P)");
  auto gx = torch::empty({N, n_in}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "input_grad", [&] {
    std::vector<scalar_t> ih, c;
    grid_constants<scalar_t>(grid, ih, c);
    const scalar_t* gpp = gp.data_ptr<scalar_t>();
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* dbp = db.data_ptr<scalar_t>();
    scalar_t* gxp = gx.data_ptr<scalar_t>();
    const scalar_t* mp = md.data_ptr<scalar_t>();
    over_rows(N, n_in * (k + 2), [&](int64_t r0, int64_t r1) {
      if (k == 3) grad_rows<scalar_t, 3>(gpp, xp, dbp, gxp, r0, r1, n_in, 3, n_int, ih.data(), c.data(), mp);
      else grad_rows<scalar_t, 0>(gpp, xp, dbp, gxp, r0, r1, n_in, k, n_int, ih.data(), c.data(), mp);
    });
  });
  return gx;
}

TORCH_LIBRARY_FRAGMENT(kanlab, m) {
  // x, b(x) (N, n_in), grid, m, k -> packed GEMM input (N, n_in (nb + 1))
  m.def("packed_input(Tensor x, Tensor b, Tensor grid, Tensor m, int k) -> Tensor", &packed_input);
  // dL/da (N, n_in (nb + 1)), x, b'(x), grid, m_d, k -> dL/dx (N, n_in)
  m.def("input_grad(Tensor gp, Tensor x, Tensor db, Tensor grid, Tensor md, int k) -> Tensor", &input_grad);
}
