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

void register_sparse_table(pybind11::module& mod);  // sparse_table.cpp

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
template <typename T, int B> struct Part { typedef T type __attribute__((vector_size(B))); };
template <typename T> inline T hsum(const Vec<T>& v) {  // halving tree
  typename Part<T, 32>::type a, b;
  std::memcpy(&a, &v, 32);
  std::memcpy(&b, reinterpret_cast<const char*>(&v) + 32, 32);
  a += b;
  typename Part<T, 16>::type c, d;
  std::memcpy(&c, &a, 16);
  std::memcpy(&d, reinterpret_cast<const char*>(&a) + 16, 16);
  c += d;
  T s = c[0];
  for (int l = 1; l < int(16 / sizeof(T)); ++l) s += c[l];
  return s;
}

template <typename T>
struct Problem {
  const T* x;    // (N, n_in), or (n_in, N) in table_grad
  const T* b;    // like x: b(x) or b'(x)
  const T* tab;  // (n_in, nc, P, CH)
  int64_t n_in, nc, P;
  int k, n_int;
  const T* ih;   // (n_in) 1 / h
  const T* c;    // (n_in) -t0 / h
  const T* m;    // (k + 1, k + 1) polynomial coefficients (values or derivatives in f)
};

// One row of x: per input the offset (1 + s) CH of its first spline row within a table
// slice and its k + 1 weights w[j n_in + i] (times 1 / h when `Deriv`; zero outside the knots).
template <typename T, int KT, bool Deriv>
void live_row(const Problem<T>& p, const T* __restrict xr, T* __restrict w, int32_t* __restrict off,
              int32_t ch) {
  constexpr int KM = KT > 0 ? KT : 1;
  const int kk = KT > 0 ? KT : p.k;
  T mk[(KM + 1) * (KM + 1)];  // KT > 0: a local copy (no aliasing with w: the loop vectorises)
  if (KT > 0) std::copy(p.m, p.m + (KM + 1) * (KM + 1), mk);
  const T* __restrict m = KT > 0 ? mk : p.m;
  const T* __restrict ih = p.ih;
  const T* __restrict c = p.c;
  const T top = T(p.n_int);
  const int64_t n_in = p.n_in;
  for (int64_t i = 0; i < n_in; ++i) {
    const T u = xr[i] * ih[i] + c[i];
    const T s = std::floor(u);
    const T f = u - s;
    const T live = (u >= T(0)) & (u < top) ? T(1) : T(0);  // selects, no branches
    off[i] = (static_cast<int32_t>(live > T(0) ? s : T(0)) + 1) * ch;
    const T scale = (Deriv ? ih[i] : T(1)) * live;
    for (int j = 0; j <= kk; ++j) {
      T acc = m[kk * (kk + 1) + j];
      for (int r = kk - 1; r >= 0; --r) acc = acc * f + m[r * (kk + 1) + j];
      w[j * n_in + i] = acc * scale;
    }
  }
}

// Cache blocking of the row kernels: blocks of samples (their outputs / output gradients
// stay in L2) times blocks of inputs (their table slices of one chunk stay in L1).
template <typename T, int NV>
void block_sizes(const Problem<T>& p, int64_t& rows, int64_t& inputs) {
  const int64_t row_bytes = NV * 64, slice = p.P * row_bytes;
  inputs = std::max<int64_t>(1, (int64_t(32) << 10) / slice);
  rows = std::min<int64_t>(256, std::max<int64_t>(8, (int64_t(128) << 10) / (p.nc * row_bytes)));
  const int64_t live_bytes = p.n_in * ((p.k + 1) * int64_t(sizeof(T)) + 4);  // per row of the block
  rows = std::min(rows, std::max<int64_t>(8, (int64_t(512) << 10) / live_bytes));
}

// Runs body(n, i0, i1, w_row, off_row) over blocks of rows [r0, r1) and of inputs, chunk by
// chunk (body gets the chunk c too), after the live entries of each row block are computed.
template <typename T, int KT, int NV, bool Deriv, typename F>
void blocked_rows(const Problem<T>& p, int64_t r0, int64_t r1, F body) {
  const int kk = KT > 0 ? KT : p.k;
  const int64_t n_in = p.n_in;
  int64_t NB, IB;
  block_sizes<T, NV>(p, NB, IB);
  std::vector<T> w(NB * (kk + 1) * n_in);
  std::vector<int32_t> off(NB * n_in);
  for (int64_t n0 = r0; n0 < r1; n0 += NB) {
    const int64_t n1 = std::min(r1, n0 + NB);
    for (int64_t n = n0; n < n1; ++n)
      live_row<T, KT, Deriv>(p, p.x + n * n_in, w.data() + (n - n0) * (kk + 1) * n_in,
                             off.data() + (n - n0) * n_in, NV * kLanes<T>);
    for (int64_t c = 0; c < p.nc; ++c)
      for (int64_t i0 = 0; i0 < n_in; i0 += IB)
        for (int64_t n = n0; n < n1; ++n)
          body(n, c, i0, std::min(n_in, i0 + IB), w.data() + (n - n0) * (kk + 1) * n_in,
               off.data() + (n - n0) * n_in);
  }
}

template <typename T, int KT, int NV>
void forward_rows(const Problem<T>& p, T* y, int64_t r0, int64_t r1) {
  constexpr int64_t L = kLanes<T>, CH = NV * L;
  const int kk = KT > 0 ? KT : p.k;
  const int64_t n_in = p.n_in, W = p.nc * CH;
  blocked_rows<T, KT, NV, false>(p, r0, r1, [&](int64_t n, int64_t c, int64_t i0, int64_t i1,
                                                const T* wr, const int32_t* offr) {
    const T* br = p.b + n * n_in;
    T* yr = y + n * W + c * CH;
    Vec<T> a0[NV], a1[NV];  // two chains per vector: FMA latency
    for (int v = 0; v < NV; ++v) {
      a0[v] = i0 == 0 ? Vec<T>{} : vload(yr + v * L);
      a1[v] = Vec<T>{};
    }
    for (int64_t i = i0; i < i1; ++i) {
      const T* base = p.tab + (i * p.nc + c) * p.P * CH;
      const T* row = base + offr[i];
      const T bi = br[i];
      for (int v = 0; v < NV; ++v) a1[v] += bi * vload(base + v * L);
      for (int j = 0; j <= kk; ++j) {
        const T wj = wr[j * n_in + i];
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
                                               const T* wr, const int32_t* offr) {
    const T* dbr = p.b + n * n_in;
    T* out = gx + n * n_in;
    Vec<T> gv[NV];
    for (int v = 0; v < NV; ++v) gv[v] = vload(g + n * W + c * CH + v * L);
    for (int64_t i = i0; i < i1; ++i) {
      const T* base = p.tab + (i * p.nc + c) * p.P * CH;
      const T* row = base + offr[i];
      const T di = dbr[i];
      Vec<T> t[NV];
      for (int v = 0; v < NV; ++v) t[v] = di * vload(base + v * L);
      for (int j = 0; j <= kk; ++j) {
        const T wj = wr[j * n_in + i];
        for (int v = 0; v < NV; ++v) t[v] += wj * vload(row + j * CH + v * L);
      }
      Vec<T> s = t[0] * gv[0];
      for (int v = 1; v < NV; ++v) s += t[v] * gv[v];
      out[i] += hsum<T>(s);
    }
  });
}

// Per-thread buffers of table_grad_inputs: one input's samples grouped by interval.
template <typename T>
struct Sorted {
  std::vector<int32_t> key, order;  // interval per sample (n_int: outside the knots), sample per slot
  std::vector<int64_t> start, fill;  // first slot of each interval (n_int + 2), running fill
  std::vector<T> ws;                 // (k + 1, N) basis values per sample, in sample order
};

// Interval keys (n_int: outside the knots) and k + 1 basis values of one input's N samples
// xi, planar ws[j N + n]. Kept out of line: inlined, GCC 12 stopped vectorising the loop.
template <typename T, int KT>
__attribute__((noinline)) void key_weights(const T* pm, int k, int n_int, T ih, T c, const T* __restrict xi,
                                           int32_t* __restrict key, T* __restrict ws, int64_t N) {
  constexpr int KM = KT > 0 ? KT : 1;
  const int kk = KT > 0 ? KT : k;
  T mk[(KM + 1) * (KM + 1)];  // KT > 0: a local copy (no aliasing with ws)
  if (KT > 0) std::copy(pm, pm + (KM + 1) * (KM + 1), mk);
  const T* __restrict m = KT > 0 ? mk : pm;
  const T top = T(n_int);
  for (int64_t n = 0; n < N; ++n) {  // vectorisable
    const T u = xi[n] * ih + c;
    const T s = std::floor(u);
    const T f = u - s;
    const T live = (u >= T(0)) & (u < top) ? T(1) : T(0);  // selects, no branches
    key[n] = static_cast<int32_t>(live > T(0) ? s : top);
    for (int j = 0; j <= kk; ++j) {
      T acc = m[kk * (kk + 1) + j];
      for (int r = kk - 1; r >= 0; --r) acc = acc * f + m[r * (kk + 1) + j];
      ws[j * N + n] = acc;
    }
  }
}

// Counting sort of input i's samples [n0, n0 + cnt) by interval, and their k + 1 basis
// values (sample order: the accumulation reads them through `order`, so only sample indices
// move; `order` holds n - n0). p.x is transposed (n_in, N).
template <typename T, int KT>
void sort_input(const Problem<T>& p, int64_t N, int64_t i, int64_t n0, int64_t cnt, Sorted<T>& st) {
  const int n_int = p.n_int;
  int32_t* key = st.key.data();
  key_weights<T, KT>(p.m, p.k, n_int, p.ih[i], p.c[i], p.x + i * N + n0, key, st.ws.data(), cnt);
  std::fill(st.start.begin(), st.start.end(), 0);
  for (int64_t n = 0; n < cnt; ++n) ++st.start[key[n] + 1];
  for (int s = 0; s <= n_int; ++s) st.start[s + 1] += st.start[s];
  std::copy(st.start.begin(), st.start.end() - 1, st.fill.begin());
  for (int64_t n = 0; n < cnt; ++n) st.order[st.fill[key[n]]++] = static_cast<int32_t>(n);
}

// gtab for the inputs [i0, i1): per interval, sum_n B_j g[n] in registers, then added to its
// rows; samples in blocks of kBlock, so a block's basis values stay in L1.
template <typename T, int KT, int NV>
void table_grad_inputs(const Problem<T>& p, int64_t N, const T* g, T* gtab, int64_t i0, int64_t i1) {
  constexpr int64_t L = kLanes<T>, CH = NV * L, kBlock = 1024;
  constexpr int KA = KT > 0 ? KT + 1 : 1;  // register accumulators per vector (KT known)
  const int kk = KT > 0 ? KT : p.k;
  const int64_t W = p.nc * CH, B = std::min(N, kBlock);
  Sorted<T> st;
  st.key.resize(B);
  st.order.resize(B);
  st.start.resize(p.n_int + 2);
  st.fill.resize(p.n_int + 1);
  st.ws.resize((kk + 1) * B);
  std::vector<Vec<T>> spill(KT > 0 ? 0 : (kk + 1) * NV);  // accumulators when k is not fixed
  for (int64_t i = i0; i < i1; ++i)
    for (int64_t n0 = 0; n0 < N; n0 += B) {
      const int64_t cnt = std::min(B, N - n0);
      sort_input<T, KT>(p, N, i, n0, cnt, st);
      const T* bi = p.b + i * N + n0;
      const T* gb = g + n0 * W;
      for (int64_t c = 0; c < p.nc; ++c) {
        T* slice = gtab + (i * p.nc + c) * p.P * CH;
        Vec<T> accb[NV];
        for (int v = 0; v < NV; ++v) accb[v] = Vec<T>{};
        for (int s = 0; s <= p.n_int; ++s) {
          const int64_t q0 = st.start[s], q1 = st.start[s + 1];
          if (s == p.n_int) {  // outside the knots: base branch only
            for (int64_t q = q0; q < q1; ++q) {
              const int64_t n = st.order[q];
              for (int v = 0; v < NV; ++v) accb[v] += bi[n] * vload(gb + n * W + c * CH + v * L);
            }
            continue;
          }
          if (q0 == q1) continue;
          Vec<T> acc_fixed[KA][NV];
          Vec<T>* acc = KT > 0 ? &acc_fixed[0][0] : spill.data();
          for (int a = 0; a < (kk + 1) * NV; ++a) acc[a] = Vec<T>{};
          for (int64_t q = q0; q < q1; ++q) {
            const int64_t n = st.order[q];
            const T* gr = gb + n * W + c * CH;
            Vec<T> gv[NV];
            for (int v = 0; v < NV; ++v) gv[v] = vload(gr + v * L);
            for (int v = 0; v < NV; ++v) accb[v] += bi[n] * gv[v];
            for (int j = 0; j <= kk; ++j) {
              const T wj = st.ws[j * cnt + n];
              for (int v = 0; v < NV; ++v) acc[j * NV + v] += wj * gv[v];
            }
          }
          T* row = slice + (1 + s) * CH;
          for (int j = 0; j <= kk; ++j)
            for (int v = 0; v < NV; ++v) vadd(row + j * CH + v * L, acc[j * NV + v]);
        }
        for (int v = 0; v < NV; ++v) vadd(slice + v * L, accb[v]);
      }
    }
}

// fn(KT, NV) with KT = 3 (unrolled) or 0 (any k), NV = 1, 2 or 4 as compile-time constants.
template <typename F>
void dispatch(int64_t k, int64_t nv, F fn) {
  using std::integral_constant;
  auto with_k = [&](auto kt) {
    if (nv == 4) fn(kt, integral_constant<int, 4>());
    else if (nv == 2) fn(kt, integral_constant<int, 2>());
    else fn(kt, integral_constant<int, 1>());
  };
  if (k == 3) with_k(integral_constant<int, 3>());
  else with_k(integral_constant<int, 0>());
}

void check(const torch::Tensor& x, const torch::Tensor& b, const torch::Tensor& grid,
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

// Checks the table / gradient layout (n_in, nc, n_int + k + 1, CH) and returns NV = CH / lanes.
int64_t check_layout(const torch::Tensor& x, const torch::Tensor& grid, int64_t k, int64_t nc, int64_t ch) {
  const int64_t lanes = x.scalar_type() == torch::kFloat ? kLanes<float> : kLanes<double>;
  const int64_t nv = ch / lanes;
  TORCH_CHECK(ch % lanes == 0 && (nv == 1 || nv == 2 || nv == 4), "chunk: 1, 2 or 4 vectors of ", lanes);
  TORCH_CHECK(x.size(1) * nc * (grid.size(1) + k) * ch < (int64_t(1) << 31), "table too large");
  return nv;
}

void check_tab(const torch::Tensor& tab, const torch::Tensor& x, const torch::Tensor& grid, int64_t k) {
  TORCH_CHECK(tab.dim() == 4 && tab.is_contiguous() && tab.scalar_type() == x.scalar_type() &&
              tab.size(0) == x.size(1) && tab.size(2) == grid.size(1) + k,
              "tab: contiguous (n_in, nc, n_int + k + 1, CH)");
}

}  // namespace

torch::Tensor sparse_forward(torch::Tensor x, torch::Tensor b, torch::Tensor grid, torch::Tensor m,
                             torch::Tensor tab, int64_t k) {
  check(x, b, grid, m, k);
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
  check(x, db, grid, md, k);
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

torch::Tensor sparse_table_grad(torch::Tensor g, torch::Tensor x, torch::Tensor b, torch::Tensor grid,
                                torch::Tensor m, int64_t k, int64_t chunk) {
  check(x, b, grid, m, k);
  const int64_t N = x.size(0), n_in = x.size(1), W = g.size(-1);
  TORCH_CHECK(g.is_contiguous() && g.scalar_type() == x.scalar_type() && g.dim() == 2 && g.size(0) == N &&
              chunk > 0 && W % chunk == 0, "g: contiguous (N, W), W a multiple of chunk");
  const int64_t nv = check_layout(x, grid, k, W / chunk, chunk);
  TORCH_CHECK(N < (int64_t(1) << 31), "batch too large");
  const int64_t P = grid.size(1) + k;
  auto gtab = torch::zeros({n_in, W / chunk, P, chunk}, x.options());
  auto xt = x.t().contiguous(), bt = b.t().contiguous();  // (n_in, N): each input's samples in a row
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_table_grad", [&] {
    std::vector<scalar_t> ih, c;
    grid_constants<scalar_t>(grid, ih, c);
    const Problem<scalar_t> p{xt.data_ptr<scalar_t>(), bt.data_ptr<scalar_t>(), nullptr, n_in, W / chunk, P,
                              int(k), int(grid.size(1) - 1), ih.data(), c.data(), m.data_ptr<scalar_t>()};
    const scalar_t* gp = g.data_ptr<scalar_t>();
    scalar_t* gtp = gtab.data_ptr<scalar_t>();
    dispatch(k, nv, [&](auto kt, auto nvt) {
      over_rows(n_in, N * (k + 2) * W, [&](int64_t i0, int64_t i1) {
        table_grad_inputs<scalar_t, decltype(kt)::value, decltype(nvt)::value>(p, N, gp, gtp, i0, i1);
      });
    });
  });
  return gtab;
}

void register_sparse(pybind11::module& mod) {
  register_sparse_table(mod);
  mod.def("sparse_forward", &sparse_forward,
          "x, b(x) (N, n_in), grid, m, padded table (n_in, nc, n_int + k + 1, CH), k -> y (N, nc CH)");
  mod.def("sparse_input_grad", &sparse_input_grad,
          "g (N, nc CH), x, b'(x), grid, m_d, padded table, k -> dL/dx (N, n_in)");
  mod.def("sparse_table_grad", &sparse_table_grad,
          "g (N, nc CH), x, b(x), grid, m, k, CH -> gradient of the padded table (n_in, nc, n_int + k + 1, CH)");
}
