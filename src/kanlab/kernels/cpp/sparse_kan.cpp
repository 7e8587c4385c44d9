// Fused sparse CPU kernels for KAN layers on uniform grids (kanlab.kernels.fused_sparse).
//
// Only the k + 1 live bases of each input are touched, so every kernel costs
// O(N n_in (k + 2) n_out), independent of the grid size. The weights come as a table
// tab (n_in, nc, P, CH), P = nb + 1 rows per input: row 0 the base branch (scale_base), row
// 1 + m basis m (scale_spline * coef); the outputs in nc chunks of CH columns (zero columns
// pad n_out). An input in knot interval s (0 <= s < n_int = nb + k) has the live bases
// s - k .. s and reads rows 1 + s - k .. 1 + s. In the k outer intervals on each side some of
// those bases do not exist: their weights are zero and their rows are the neighbouring
// slice's, or the k zero rows the table has before its first and after its last slice.
// Inputs outside the knots have zero spline weights.
//
// forward:     y[n] = sum_i b(x_ni) tab[i, 0] + sum_j B_j(x_ni) tab[i, 1 + s - k + j]
//              (rows of n in parallel; y[n] accumulates in registers)
// input_grad:  gx[n, i] = <b'(x_ni) tab[i, 0] + sum_j B'_j(x_ni) tab[i, 1 + s - k + j], g[n]>
//              (rows in parallel; the dot products of L inputs are reduced together)
// table_grad:  sparse_table_grad.cpp. The table itself: sparse_table.cpp.
// The base activation and its derivative come from torch.
#include <torch/all.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "sparse_common.h"
#include "uniform_basis.h"

namespace {

using namespace kanlab_sparse;
using kanlab_basis::grid_constants;
using kanlab_basis::over_rows;

// Rows [n0, n1) of x, inputs [g0, g1): per (row, input) the offset (1 + s - k) CH of the row
// of its first live basis s - k, relative to its table slice, and its k + 1 weights (times
// 1 / h when `Deriv`; zero outside the knots and for bases that do not exist, whose rows
// belong to a neighbouring slice or to the table's padding). Row r of the block keeps its
// weights at w[(r (k + 1) + j) G + i - g0] and offsets at off[r G + i - g0], G = g1 - g0.
template <typename T, int KT, bool Deriv>
void live_block(const Problem<T>& p, int64_t n0, int64_t n1, int64_t g0, int64_t g1, T* __restrict w,
                int32_t* __restrict off, int32_t ch) {
  constexpr int KM = KT > 0 ? KT : 1;
  const int kk = KT > 0 ? KT : p.k;
  T mk[(KM + 1) * (KM + 1)];  // KT > 0: a local copy (no aliasing with w: the loop vectorises)
  if (KT > 0) std::copy(p.m, p.m + (KM + 1) * (KM + 1), mk);
  const T* __restrict m = KT > 0 ? mk : p.m;
  const T* __restrict ih = p.ih + g0;
  const T* __restrict c = p.c + g0;
  const T top = T(p.n_int), nb = T(p.P - 1);
  const int64_t G = g1 - g0;
  for (int64_t n = n0; n < n1; ++n) {
    const T* __restrict xr = p.x + n * p.n_in + g0;
    T* __restrict wr = w + (n - n0) * (kk + 1) * G;
    int32_t* __restrict offr = off + (n - n0) * G;
    for (int64_t i = 0; i < G; ++i) {
      const T u = xr[i] * ih[i] + c[i];
      const T s = std::floor(u);
      const T f = u - s;
      const T live = (u >= T(0)) & (u < top) ? T(1) : T(0);  // selects, no branches
      offr[i] = (static_cast<int32_t>(live > T(0) ? s : T(kk)) + 1 - kk) * ch;  // outside: rows 1 .. k + 1
      const T first = s - T(kk);  // first live basis (this form keeps the loop vectorised)
      const T scale = (Deriv ? ih[i] : T(1)) * live;
      for (int j = 0; j <= kk; ++j) {
        const T acc = kanlab_basis::basis_weight(m, kk, j, f);
        const T exists = (first + T(j) >= T(0)) & (first + T(j) < nb) ? T(1) : T(0);
        wr[j * G + i] = acc * scale * exists;
      }
    }
  }
}

// Cache blocking of the row kernels: blocks of rows (their outputs / output gradients stay
// in L2) times groups of inputs (their weights for the block are computed just before use
// and stay in L2) times sub-blocks of inputs (their table slices of one chunk stay in L1; a
// multiple of L inputs when that many fit, for input_grad's hsums).
template <typename T, int NV>
void block_sizes(const Problem<T>& p, int64_t& rows, int64_t& group, int64_t& inputs) {
  const int64_t L = kLanes<T>, row_bytes = NV * 64;
  inputs = std::max<int64_t>(1, (int64_t(40) << 10) / (p.P * row_bytes));
  if (inputs >= L) inputs -= inputs % L;
  group = std::min(p.n_in, std::max(inputs, L));
  rows = std::min<int64_t>(512, std::max<int64_t>(8, (int64_t(128) << 10) / (p.nc * row_bytes)));
  const int64_t live_bytes = group * ((p.k + 1) * int64_t(sizeof(T)) + 4);  // per row of the block
  rows = std::min(rows, std::max<int64_t>(8, (int64_t(256) << 10) / live_bytes));
}

// Runs body(n, c, i0, i1, wr, offr, G) over rows [r0, r1) and the inputs [i0, i1) of each
// sub-block, chunk by chunk; input i's weights are wr[j G + i - i0], its offset offr[i - i0].
template <typename T, int KT, int NV, bool Deriv, typename F>
void blocked_rows(const Problem<T>& p, int64_t r0, int64_t r1, F body) {
  const int kk = KT > 0 ? KT : p.k;
  const int64_t n_in = p.n_in;
  int64_t NB, GI, IB;
  block_sizes<T, NV>(p, NB, GI, IB);
  std::vector<T> w(NB * (kk + 1) * GI);
  std::vector<int32_t> off(NB * GI);
  for (int64_t n0 = r0; n0 < r1; n0 += NB) {
    const int64_t n1 = std::min(r1, n0 + NB);
    for (int64_t g0 = 0; g0 < n_in; g0 += GI) {
      const int64_t g1 = std::min(n_in, g0 + GI), G = g1 - g0;
      live_block<T, KT, Deriv>(p, n0, n1, g0, g1, w.data(), off.data(), NV * kLanes<T>);
      for (int64_t c = 0; c < p.nc; ++c)
        for (int64_t i0 = g0; i0 < g1; i0 += IB)
          for (int64_t n = n0; n < n1; ++n)
            body(n, c, i0, std::min(g1, i0 + IB), w.data() + (n - n0) * (kk + 1) * G + (i0 - g0),
                 off.data() + (n - n0) * G + (i0 - g0), G);
    }
  }
}

template <typename T, int KT, int NV>
void forward_rows(const Problem<T>& p, T* y, int64_t r0, int64_t r1) {
  constexpr int64_t L = kLanes<T>, CH = NV * L;
  const int kk = KT > 0 ? KT : p.k;
  const int64_t n_in = p.n_in, W = p.nc * CH;
  blocked_rows<T, KT, NV, false>(p, r0, r1, [&](int64_t n, int64_t c, int64_t i0, int64_t i1,
                                                const T* wr, const int32_t* offr, int64_t G) {
    const T* br = p.b + n * n_in;
    T* yr = y + n * W + c * CH;
    Vec<T> a0[NV], a1[NV];  // two chains per vector: FMA latency
    for (int v = 0; v < NV; ++v) {
      a0[v] = i0 == 0 ? Vec<T>{} : vload(yr + v * L);
      a1[v] = Vec<T>{};
    }
    for (int64_t i = i0; i < i1; ++i) {
      const T* base = p.tab + (i * p.nc + c) * p.P * CH;
      const T* row = base + offr[i - i0];
      const T bi = br[i];
      for (int v = 0; v < NV; ++v) a1[v] += bi * vload(base + v * L);
      for (int j = 0; j <= kk; ++j) {
        const T wj = wr[j * G + i - i0];
        for (int v = 0; v < NV; ++v) {
          if (j & 1) a1[v] += wj * vload(row + j * CH + v * L);
          else a0[v] += wj * vload(row + j * CH + v * L);
        }
      }
    }
    for (int v = 0; v < NV; ++v) vstore(yr + v * L, a0[v] + a1[v]);
  });
}

template <typename T, int KT, int NV>
void input_grad_rows(const Problem<T>& p, const T* g, T* gx, int64_t r0, int64_t r1) {
  constexpr int64_t L = kLanes<T>, CH = NV * L;
  const int kk = KT > 0 ? KT : p.k;
  const int64_t n_in = p.n_in, W = p.nc * CH;
  std::fill(gx + r0 * n_in, gx + r1 * n_in, T(0));
  blocked_rows<T, KT, NV, true>(p, r0, r1, [&](int64_t n, int64_t c, int64_t i0, int64_t i1,
                                               const T* wr, const int32_t* offr, int64_t G) {
    const T* dbr = p.b + n * n_in;
    T* out = gx + n * n_in;
    Vec<T> gv[NV];
    for (int v = 0; v < NV; ++v) gv[v] = vload(g + n * W + c * CH + v * L);
    auto dot = [&](int64_t i) {  // lanes of <b' tab[i, 0] + sum_j B'_j tab[i, 1 + s - k + j], g[n]>
      const T* base = p.tab + (i * p.nc + c) * p.P * CH;
      const T* row = base + offr[i - i0];
      const T di = dbr[i];
      Vec<T> t[NV], u[NV];  // two chains per vector, then a tree over the vectors: latency
      for (int v = 0; v < NV; ++v) t[v] = di * vload(base + v * L), u[v] = Vec<T>{};
      for (int j = 0; j <= kk; ++j) {
        const T wj = wr[j * G + i - i0];
        for (int v = 0; v < NV; ++v) {
          if (j & 1) u[v] += wj * vload(row + j * CH + v * L);
          else t[v] += wj * vload(row + j * CH + v * L);
        }
      }
      for (int v = 0; v < NV; ++v) t[v] = (t[v] + u[v]) * gv[v];
      for (int h = NV / 2; h >= 1; h /= 2)
        for (int v = 0; v < h; ++v) t[v] += t[v + h];
      return t[0];
    };
    int64_t i = i0;
    for (; i + L <= i1; i += L) {  // L inputs reduced together
      Vec<T> dots[L];
      for (int64_t q = 0; q < L; ++q) dots[q] = dot(i + q);
      vadd(out + i, hsums(dots));
    }
    for (; i < i1; ++i) out[i] += hsum<T>(dot(i));
  });
}

}  // namespace

torch::Tensor sparse_forward(torch::Tensor x, torch::Tensor b, torch::Tensor grid, torch::Tensor m,
                             torch::Tensor tab, int64_t k) {
  kanlab_basis::check_inputs(x, b, grid, m, k);
  check_tab(tab, x, grid, k);
  const int64_t nv = check_layout(x, grid, k, tab.size(1), tab.size(3));
  const int64_t N = x.size(0), n_in = x.size(1), W = tab.size(1) * tab.size(3);
  auto y = torch::empty({N, W}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_forward", [&] {
    std::vector<scalar_t> ih, c;
    grid_constants<scalar_t>(grid, ih, c);
    const Problem<scalar_t> p{x.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(), tab.data_ptr<scalar_t>(), n_in,
                              tab.size(1), tab.size(2), int(k), int(grid.size(1) - 1), ih.data(), c.data(),
                              m.data_ptr<scalar_t>()};
    scalar_t* yp = y.data_ptr<scalar_t>();
    dispatch(k, nv, [&](auto kt, auto nvt) {
      over_rows(N, n_in * (k + 2) * W, [&](int64_t r0, int64_t r1) {
        forward_rows<scalar_t, decltype(kt)::value, decltype(nvt)::value>(p, yp, r0, r1);
      });
    });
  });
  return y;
}

torch::Tensor sparse_input_grad(torch::Tensor g, torch::Tensor x, torch::Tensor db, torch::Tensor grid,
                                torch::Tensor md, torch::Tensor tab, int64_t k) {
  kanlab_basis::check_inputs(x, db, grid, md, k);
  check_tab(tab, x, grid, k);
  const int64_t nv = check_layout(x, grid, k, tab.size(1), tab.size(3));
  const int64_t N = x.size(0), n_in = x.size(1), W = tab.size(1) * tab.size(3);
  TORCH_CHECK(g.is_contiguous() && g.scalar_type() == x.scalar_type() && g.dim() == 2 && g.size(0) == N &&
              g.size(1) == W, "g: contiguous (N, W)");
  auto gx = torch::empty({N, n_in}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_input_grad", [&] {
    std::vector<scalar_t> ih, c;
    grid_constants<scalar_t>(grid, ih, c);
    const Problem<scalar_t> p{x.data_ptr<scalar_t>(), db.data_ptr<scalar_t>(), tab.data_ptr<scalar_t>(), n_in,
                              tab.size(1), tab.size(2), int(k), int(grid.size(1) - 1), ih.data(), c.data(),
                              md.data_ptr<scalar_t>()};
    const scalar_t* gp = g.data_ptr<scalar_t>();
    scalar_t* gxp = gx.data_ptr<scalar_t>();
    dispatch(k, nv, [&](auto kt, auto nvt) {
      over_rows(N, n_in * (k + 2) * W, [&](int64_t r0, int64_t r1) {
        input_grad_rows<scalar_t, decltype(kt)::value, decltype(nvt)::value>(p, gp, gxp, r0, r1);
      });
    });
  });
  return gx;
}

TORCH_LIBRARY_FRAGMENT(kanlab, m) {
  // x, b(x) (N, n_in), grid, m, table (n_in, nc, nb + 1, CH), k -> y (N, nc CH)
  m.def("sparse_forward(Tensor x, Tensor b, Tensor grid, Tensor m, Tensor tab, int k) -> Tensor", &sparse_forward);
  // g (N, nc CH), x, b'(x), grid, m_d, table, k -> dL/dx (N, n_in)
  m.def("sparse_input_grad(Tensor g, Tensor x, Tensor db, Tensor grid, Tensor md, Tensor tab, int k) -> Tensor",
        &sparse_input_grad);
}
