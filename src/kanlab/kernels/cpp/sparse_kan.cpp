// Fused sparse CPU kernels for KAN layers on uniform grids (kanlab.kernels.fused_sparse).
//
// Only the k + 1 live bases of each input are touched, so every kernel costs
// O(N n_in (k + 2) n_out), independent of the grid size. The weights come as a padded table
// tab (n_in, P, W), P = nb + 2k + 1 = n_int + k + 1 rows per input: row 0 the base branch
// (scale_base), rows 1 .. k zero, rows k + 1 .. k + nb the bases (scale_spline * coef),
// rows k + nb + 1 .. nb + 2k zero; W = n_out rounded up to a whole SIMD vector (zero columns).
// An input in knot interval s (0 <= s < n_int) reads rows 1 + s .. 1 + s + k, so bases that
// do not exist meet zero rows; inputs outside the knots have zero spline weights.
//
// forward:     y[n] = sum_i b(x_ni) tab[i, 0] + sum_j B_j(x_ni) tab[i, 1 + s + j]
//              (rows of n in parallel; y[n] accumulates in registers)
// input_grad:  gx[n, i] = <b'(x_ni) tab[i, 0] + sum_j B'_j(x_ni) tab[i, 1 + s + j], g[n]>
// table_grad:  gtab[i, 0] = sum_n b(x_ni) g[n], gtab[i, 1 + s + j] = sum_{n in s} B_j(x_ni) g[n]
//              (inputs in parallel; the samples of each input are grouped by interval with a
//              counting sort, so each interval's k + 1 row sums stay in registers)
// The base activation and its derivative come from torch. Vectors are GCC vector extensions
// of 64 bytes (any x86 / ARM target; -march=native picks the instructions).
#include <torch/extension.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "uniform_basis.h"

namespace {

using kanlab_basis::grid_constants;
using kanlab_basis::over_rows;
using kanlab_basis::row_weights;

template <typename T> struct VecOf;
template <> struct VecOf<float> { typedef float type __attribute__((vector_size(64))); };
template <> struct VecOf<double> { typedef double type __attribute__((vector_size(64))); };
template <typename T> using Vec = typename VecOf<T>::type;
template <typename T> constexpr int64_t kLanes = 64 / sizeof(T);

template <typename T> inline Vec<T> vload(const T* p) { Vec<T> v; std::memcpy(&v, p, sizeof v); return v; }
template <typename T> inline void vstore(T* p, const Vec<T>& v) { std::memcpy(p, &v, sizeof v); }
template <typename T> inline void vadd(T* p, const Vec<T>& v) { vstore(p, vload(p) + v); }
template <typename T> inline T hsum(const Vec<T>& v) {
  T s = T(0);
  for (int l = 0; l < kLanes<T>; ++l) s += v[l];
  return s;
}

// Calls fn(std::integral_constant<int, NV>, ch) over the columns [0, W) in chunks of NV vectors.
template <typename T, typename F>
void over_chunks(int64_t W, F fn) {
  constexpr int64_t L = kLanes<T>;
  int64_t ch = 0;
  for (; ch + 4 * L <= W; ch += 4 * L) fn(std::integral_constant<int, 4>(), ch);
  for (; ch + 2 * L <= W; ch += 2 * L) fn(std::integral_constant<int, 2>(), ch);
  for (; ch < W; ch += L) fn(std::integral_constant<int, 1>(), ch);
}

template <typename T>
struct Problem {
  const T* x;    // (N, n_in)
  const T* b;    // (N, n_in): b(x) or b'(x)
  const T* tab;  // (n_in, P, W)
  int64_t n_in, P, W;
  int k, n_int;
  const T* ih;   // (n_in) 1 / h
  const T* c;    // (n_in) -t0 / h
  const T* m;    // (k + 1, k + 1) polynomial coefficients (values or derivatives in f)
};

// One row of x: the table offset of each input's first spline row and its k + 1 weights
// w[j n_in + i] (times 1 / h when `deriv`; zero outside the knots).
template <typename T, int KT>
void live_row(const Problem<T>& p, const T* xr, T* span, T* w, int64_t* off, bool deriv) {
  const int kk = KT > 0 ? KT : p.k;
  row_weights<T, KT>(xr, p.n_in, kk, p.n_int, p.ih, p.c, p.m, span, w);
  for (int64_t i = 0; i < p.n_in; ++i) {
    const int s = static_cast<int>(span[i]);
    const bool live = s >= 0 && s < p.n_int;
    off[i] = (i * p.P + 1 + (live ? s : 0)) * p.W;
    const T scale = deriv ? p.ih[i] : T(1);
    for (int j = 0; j <= kk; ++j) w[j * p.n_in + i] = live ? w[j * p.n_in + i] * scale : T(0);
  }
}

template <typename T, int KT>
void forward_rows(const Problem<T>& p, T* y, int64_t r0, int64_t r1) {
  constexpr int64_t L = kLanes<T>;
  const int kk = KT > 0 ? KT : p.k;
  const int64_t n_in = p.n_in, W = p.W;
  std::vector<T> buf((kk + 2) * n_in);
  std::vector<int64_t> off(n_in);
  T* span = buf.data();
  T* w = span + n_in;
  for (int64_t n = r0; n < r1; ++n) {
    live_row<T, KT>(p, p.x + n * n_in, span, w, off.data(), false);
    const T* br = p.b + n * n_in;
    over_chunks<T>(W, [&](auto nv, int64_t ch) {
      constexpr int NV = decltype(nv)::value;
      Vec<T> a0[NV], a1[NV];  // two chains per vector: FMA latency
      for (int v = 0; v < NV; ++v) a0[v] = a1[v] = Vec<T>{};
      for (int64_t i = 0; i < n_in; ++i) {
        const T* base = p.tab + i * p.P * W + ch;
        const T* row = p.tab + off[i] + ch;
        const T bi = br[i];
        for (int v = 0; v < NV; ++v) a1[v] += bi * vload(base + v * L);
        for (int j = 0; j <= kk; ++j) {
          const T wj = w[j * n_in + i];
          for (int v = 0; v < NV; ++v) {
            if (j & 1) a1[v] += wj * vload(row + j * W + v * L);
            else a0[v] += wj * vload(row + j * W + v * L);
          }
        }
      }
      for (int v = 0; v < NV; ++v) vstore(y + n * W + ch + v * L, a0[v] + a1[v]);
    });
  }
}

template <typename T, int KT>
void input_grad_rows(const Problem<T>& p, const T* g, T* gx, int64_t r0, int64_t r1) {
  constexpr int64_t L = kLanes<T>;
  const int kk = KT > 0 ? KT : p.k;
  const int64_t n_in = p.n_in, W = p.W;
  std::vector<T> buf((kk + 2) * n_in);
  std::vector<int64_t> off(n_in);
  T* span = buf.data();
  T* w = span + n_in;
  for (int64_t n = r0; n < r1; ++n) {
    live_row<T, KT>(p, p.x + n * n_in, span, w, off.data(), true);
    const T* dbr = p.b + n * n_in;
    T* out = gx + n * n_in;
    std::fill(out, out + n_in, T(0));
    over_chunks<T>(W, [&](auto nv, int64_t ch) {
      constexpr int NV = decltype(nv)::value;
      Vec<T> gv[NV];
      for (int v = 0; v < NV; ++v) gv[v] = vload(g + n * W + ch + v * L);
      for (int64_t i = 0; i < n_in; ++i) {
        const T* base = p.tab + i * p.P * W + ch;
        const T* row = p.tab + off[i] + ch;
        const T di = dbr[i];
        Vec<T> t[NV];
        for (int v = 0; v < NV; ++v) t[v] = di * vload(base + v * L);
        for (int j = 0; j <= kk; ++j) {
          const T wj = w[j * n_in + i];
          for (int v = 0; v < NV; ++v) t[v] += wj * vload(row + j * W + v * L);
        }
        Vec<T> s = t[0] * gv[0];
        for (int v = 1; v < NV; ++v) s += t[v] * gv[v];
        out[i] += hsum<T>(s);
      }
    });
  }
}

// Per-thread buffers of table_grad_inputs: the samples of one input sorted by interval.
template <typename T>
struct Sorted {
  std::vector<int64_t> key, start, order;  // interval per sample, bucket starts, sample per slot
  std::vector<T> f, bs, ws;               // fraction per sample; b(x) and k + 1 weights per slot
};

// Counting sort of input i's samples by interval (n_int = outside the knots), with the
// base values and the k + 1 basis values of every slot.
template <typename T, int KT>
void sort_input(const Problem<T>& p, int64_t N, int64_t i, Sorted<T>& st) {
  const int kk = KT > 0 ? KT : p.k;
  const int n_int = p.n_int;
  std::fill(st.start.begin(), st.start.end(), 0);
  const T top = T(n_int), ih = p.ih[i], c = p.c[i];
  for (int64_t n = 0; n < N; ++n) {
    const T u = p.x[n * p.n_in + i] * ih + c;
    const T s = std::floor(u);
    const bool live = u >= T(0) && u < top;
    st.key[n] = live ? static_cast<int64_t>(s) : n_int;
    st.f[n] = u - s;
    ++st.start[st.key[n] + 1];
  }
  for (int s = 0; s <= n_int; ++s) st.start[s + 1] += st.start[s];
  std::vector<int64_t> fill(st.start.begin(), st.start.end() - 1);
  T* fsorted = st.ws.data() + (kk + 1) * N;  // scratch after the weights
  for (int64_t n = 0; n < N; ++n) {
    const int64_t q = fill[st.key[n]]++;
    st.order[q] = n;
    fsorted[q] = st.f[n];
    st.bs[q] = p.b[n * p.n_in + i];
  }
  for (int64_t q = 0; q < N; ++q) {
    const T f = fsorted[q];
    for (int j = 0; j <= kk; ++j) {
      T acc = p.m[kk * (kk + 1) + j];
      for (int r = kk - 1; r >= 0; --r) acc = acc * f + p.m[r * (kk + 1) + j];
      st.ws[j * N + q] = acc;
    }
  }
}

template <typename T, int KT>
void table_grad_inputs(const Problem<T>& p, int64_t N, const T* g, T* gtab, int64_t i0, int64_t i1) {
  constexpr int64_t L = kLanes<T>;
  constexpr int KA = KT > 0 ? KT + 1 : 1;  // register accumulators per vector (KT known)
  const int kk = KT > 0 ? KT : p.k;
  const int64_t W = p.W;
  Sorted<T> st;
  st.key.resize(N);
  st.start.resize(p.n_int + 2);
  st.order.resize(N);
  st.f.resize(N);
  st.bs.resize(N);
  st.ws.resize((kk + 2) * N);
  std::vector<Vec<T>> spill(KT > 0 ? 0 : (kk + 1) * 4);  // accumulators when k is not fixed
  for (int64_t i = i0; i < i1; ++i) {
    sort_input<T, KT>(p, N, i, st);
    over_chunks<T>(W, [&](auto nv, int64_t ch) {
      constexpr int NV = decltype(nv)::value;
      Vec<T> accb[NV];
      for (int v = 0; v < NV; ++v) accb[v] = Vec<T>{};
      for (int s = 0; s <= p.n_int; ++s) {
        const int64_t q0 = st.start[s], q1 = st.start[s + 1];
        if (q0 == q1) continue;
        if (s == p.n_int) {  // outside the knots: base branch only
          for (int64_t q = q0; q < q1; ++q) {
            const T* gr = g + st.order[q] * W + ch;
            for (int v = 0; v < NV; ++v) accb[v] += st.bs[q] * vload(gr + v * L);
          }
          continue;
        }
        Vec<T> acc_fixed[KA][NV];
        Vec<T>* acc = KT > 0 ? &acc_fixed[0][0] : spill.data();
        for (int a = 0; a < (kk + 1) * NV; ++a) acc[a] = Vec<T>{};
        for (int64_t q = q0; q < q1; ++q) {
          const T* gr = g + st.order[q] * W + ch;
          Vec<T> gv[NV];
          for (int v = 0; v < NV; ++v) gv[v] = vload(gr + v * L);
          for (int v = 0; v < NV; ++v) accb[v] += st.bs[q] * gv[v];
          for (int j = 0; j <= kk; ++j) {
            const T wj = st.ws[j * N + q];
            for (int v = 0; v < NV; ++v) acc[j * NV + v] += wj * gv[v];
          }
        }
        T* row = gtab + (i * p.P + 1 + s) * W + ch;
        for (int j = 0; j <= kk; ++j)
          for (int v = 0; v < NV; ++v) vadd(row + j * W + v * L, acc[j * NV + v]);
      }
      for (int v = 0; v < NV; ++v) vstore(gtab + i * p.P * W + ch + v * L, accb[v]);
    });
  }
}

template <typename T>
Problem<T> make_problem(const torch::Tensor& x, const torch::Tensor& b, const torch::Tensor& m,
                        const torch::Tensor& tab, int64_t k, int n_int, const std::vector<T>& ih,
                        const std::vector<T>& c) {
  return Problem<T>{x.data_ptr<T>(), b.data_ptr<T>(), tab.defined() ? tab.data_ptr<T>() : nullptr,
                    x.size(1), n_int + k + 1, 0, static_cast<int>(k), n_int, ih.data(), c.data(),
                    m.data_ptr<T>()};
}

void check(const torch::Tensor& x, const torch::Tensor& b, const torch::Tensor& grid,
           const torch::Tensor& m, int64_t k, int64_t width) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 2 && x.is_contiguous(), "x: contiguous 2-D CPU tensor");
  TORCH_CHECK(x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble, "x: float32 or float64");
  TORCH_CHECK(b.sizes() == x.sizes() && b.is_contiguous() && b.scalar_type() == x.scalar_type(),
              "base values / derivatives: contiguous, like x");
  TORCH_CHECK(grid.dim() == 2 && grid.size(0) == x.size(1) && grid.is_contiguous(), "grid: (n_in, n_knots)");
  TORCH_CHECK(grid.scalar_type() == x.scalar_type() && m.scalar_type() == x.scalar_type(), "dtypes differ");
  TORCH_CHECK(k >= 1 && grid.size(1) > 2 * k + 1, "spline order / grid size");
  TORCH_CHECK(m.is_contiguous() && m.numel() == (k + 1) * (k + 1), "m: (k+1, k+1)");
  const int64_t lanes = x.scalar_type() == torch::kFloat ? kLanes<float> : kLanes<double>;
  TORCH_CHECK(width > 0 && width % lanes == 0, "padded width: a positive multiple of ", lanes);
}

void check_2d(const torch::Tensor& t, const torch::Tensor& x, int64_t rows, int64_t cols, const char* what) {
  TORCH_CHECK(t.is_contiguous() && t.scalar_type() == x.scalar_type() && t.dim() == 2 && t.size(0) == rows &&
              t.size(1) == cols, what);
}

}  // namespace

torch::Tensor sparse_forward(torch::Tensor x, torch::Tensor b, torch::Tensor grid, torch::Tensor m,
                             torch::Tensor tab, int64_t k) {
  const int n_int = static_cast<int>(grid.size(1) - 1);
  check(x, b, grid, m, k, tab.size(-1));
  const int64_t N = x.size(0), n_in = x.size(1), W = tab.size(-1), P = n_int + k + 1;
  check_2d(tab.view({-1, W}), x, n_in * P, W, "tab: contiguous (n_in, n_int + k + 1, W)");
  auto y = torch::empty({N, W}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_forward", [&] {
    std::vector<scalar_t> ih, c;
    grid_constants<scalar_t>(grid, ih, c);
    auto p = make_problem<scalar_t>(x, b, m, tab, k, n_int, ih, c);
    p.W = W;
    scalar_t* yp = y.data_ptr<scalar_t>();
    over_rows(N, n_in * (k + 2) * W, [&](int64_t r0, int64_t r1) {
      if (k == 3) forward_rows<scalar_t, 3>(p, yp, r0, r1);
      else forward_rows<scalar_t, 0>(p, yp, r0, r1);
    });
  });
  return y;
}

torch::Tensor sparse_input_grad(torch::Tensor g, torch::Tensor x, torch::Tensor db, torch::Tensor grid,
                                torch::Tensor md, torch::Tensor tab, int64_t k) {
  const int n_int = static_cast<int>(grid.size(1) - 1);
  check(x, db, grid, md, k, tab.size(-1));
  const int64_t N = x.size(0), n_in = x.size(1), W = tab.size(-1), P = n_int + k + 1;
  check_2d(tab.view({-1, W}), x, n_in * P, W, "tab: contiguous (n_in, n_int + k + 1, W)");
  check_2d(g, x, N, W, "g: contiguous (N, W)");
  auto gx = torch::empty({N, n_in}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_input_grad", [&] {
    std::vector<scalar_t> ih, c;
    grid_constants<scalar_t>(grid, ih, c);
    auto p = make_problem<scalar_t>(x, db, md, tab, k, n_int, ih, c);
    p.W = W;
    const scalar_t* gp = g.data_ptr<scalar_t>();
    scalar_t* gxp = gx.data_ptr<scalar_t>();
    over_rows(N, n_in * (k + 2) * W, [&](int64_t r0, int64_t r1) {
      if (k == 3) input_grad_rows<scalar_t, 3>(p, gp, gxp, r0, r1);
      else input_grad_rows<scalar_t, 0>(p, gp, gxp, r0, r1);
    });
  });
  return gx;
}

torch::Tensor sparse_table_grad(torch::Tensor g, torch::Tensor x, torch::Tensor b, torch::Tensor grid,
                                torch::Tensor m, int64_t k) {
  const int n_int = static_cast<int>(grid.size(1) - 1);
  check(x, b, grid, m, k, g.size(-1));
  const int64_t N = x.size(0), n_in = x.size(1), W = g.size(-1), P = n_int + k + 1;
  check_2d(g, x, N, W, "g: contiguous (N, W)");
  auto gtab = torch::zeros({n_in, P, W}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_table_grad", [&] {
    std::vector<scalar_t> ih, c;
    grid_constants<scalar_t>(grid, ih, c);
    auto p = make_problem<scalar_t>(x, b, m, torch::Tensor(), k, n_int, ih, c);
    p.W = W;
    const scalar_t* gp = g.data_ptr<scalar_t>();
    scalar_t* gtp = gtab.data_ptr<scalar_t>();
    over_rows(n_in, N * (k + 2) * W, [&](int64_t i0, int64_t i1) {
      if (k == 3) table_grad_inputs<scalar_t, 3>(p, N, gp, gtp, i0, i1);
      else table_grad_inputs<scalar_t, 0>(p, N, gp, gtp, i0, i1);
    });
  });
  return gtab;
}

void register_sparse(pybind11::module& mod) {
  mod.def("sparse_forward", &sparse_forward,
          "x, b(x) (N, n_in), grid, m, padded table (n_in, n_int + k + 1, W), k -> y (N, W)");
  mod.def("sparse_input_grad", &sparse_input_grad,
          "g (N, W), x, b'(x), grid, m_d, padded table, k -> dL/dx (N, n_in)");
  mod.def("sparse_table_grad", &sparse_table_grad,
          "g (N, W), x, b(x), grid, m, k -> gradient of the padded table (n_in, n_int + k + 1, W)");
}
