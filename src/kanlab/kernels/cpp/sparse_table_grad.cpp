// Gradient of the fused sparse kernels' weight table (kanlab.kernels.fused_sparse):
//
//   gtab[i, 0] = sum_n b(x_ni) g[n],   gtab[i, 1 + m] = sum_n B_m(x_ni) g[n]
//
// (B_m non-zero only for the samples in the k + 1 intervals m .. m + k).
//
// Inputs are split across threads (each owns its table slices). Samples go in blocks whose
// output gradients stay in L2 while every input of the thread visits them; per (block, input)
// a counting sort groups the samples by knot interval, so each interval's k + 1 row sums stay
// in registers and meet the table once.
#include <torch/all.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "sparse_common.h"
#include "uniform_basis.h"

namespace {

using namespace kanlab_sparse;

// Per-thread buffers: one input's samples of a block, grouped by interval.
template <typename T>
struct Sorted {
  std::vector<int32_t> key, order;  // interval per sample (n_int: outside the knots), sample per slot
  std::vector<int64_t> start, fill;  // first slot of each interval (n_int + 2), running fill
  std::vector<T> ws;                 // (k + 2, B): k + 1 basis values, then b(x), per sample
};

// Interval keys (n_int: outside the knots), the k + 1 basis values and b(x) of cnt samples of
// one input, read with stride n_in from x and b; planar ws[j B + n] (j = k + 1: b). Kept out
// of line: inlined, GCC 12 stopped vectorising the loop.
template <typename T, int KT>
__attribute__((noinline)) void key_weights(const T* pm, int k, int n_int, T ih, T c, const T* __restrict xi,
                                           const T* __restrict bi, int64_t stride, int32_t* __restrict key,
                                           T* __restrict ws, int64_t B, int64_t cnt) {
  constexpr int KM = KT > 0 ? KT : 1;
  const int kk = KT > 0 ? KT : k;
  T mk[(KM + 1) * (KM + 1)];  // KT > 0: a local copy (no aliasing with ws)
  if (KT > 0) std::copy(pm, pm + (KM + 1) * (KM + 1), mk);
  const T* __restrict m = KT > 0 ? mk : pm;
  const T top = T(n_int);
  for (int64_t n = 0; n < cnt; ++n) {  // vectorisable
    const T u = xi[n * stride] * ih + c;
    const T s = std::floor(u);
    const T f = u - s;
    const T live = (u >= T(0)) & (u < top) ? T(1) : T(0);  // selects, no branches
    key[n] = static_cast<int32_t>(live > T(0) ? s : top);
    for (int j = 0; j <= kk; ++j) ws[j * B + n] = kanlab_basis::basis_weight(m, kk, j, f);
    ws[(kk + 1) * B + n] = bi[n * stride];
  }
}

// Counting sort of input i's samples [n0, n0 + cnt) by interval (`order` holds n - n0; only
// sample indices move, the values stay in sample order).
template <typename T, int KT>
void sort_input(const Problem<T>& p, int64_t i, int64_t n0, int64_t cnt, int64_t B, Sorted<T>& st) {
  const int n_int = p.n_int;
  int32_t* key = st.key.data();
  key_weights<T, KT>(p.m, p.k, n_int, p.ih[i], p.c[i], p.x + n0 * p.n_in + i, p.b + n0 * p.n_in + i, p.n_in,
                     key, st.ws.data(), B, cnt);
  std::fill(st.start.begin(), st.start.end(), 0);
  for (int64_t n = 0; n < cnt; ++n) ++st.start[key[n] + 1];
  for (int s = 0; s <= n_int; ++s) st.start[s + 1] += st.start[s];
  std::copy(st.start.begin(), st.start.end() - 1, st.fill.begin());
  for (int64_t n = 0; n < cnt; ++n) st.order[st.fill[key[n]]++] = static_cast<int32_t>(n);
}

// Samples per block: ~512 KiB of output gradients (L2), at least 512 samples and 4 per
// interval, so the sort and the per-interval flushes stay a small part of the work.
template <typename T>
int64_t sample_block(const Problem<T>& p, int64_t N, int64_t W) {
  const int64_t want = std::max<int64_t>({512, 4 * int64_t(p.n_int + 2), (int64_t(512) << 10) / (W * int64_t(sizeof(T)))});
  return std::min(N, want);
}

// gtab for the inputs [i0, i1).
template <typename T, int KT, int NV>
void table_grad_inputs(const Problem<T>& p, int64_t N, const T* g, T* gtab, int64_t i0, int64_t i1) {
  constexpr int64_t L = kLanes<T>, CH = NV * L;
  constexpr int KA = KT > 0 ? KT + 1 : 1;  // register accumulators per vector (KT known)
  const int kk = KT > 0 ? KT : p.k;
  const int64_t W = p.nc * CH, B = sample_block(p, N, W);
  Sorted<T> st;
  st.key.resize(B);
  st.order.resize(B);
  st.start.resize(p.n_int + 2);
  st.fill.resize(p.n_int + 1);
  st.ws.resize((kk + 2) * B);
  std::vector<Vec<T>> spill(KT > 0 ? 0 : (kk + 1) * NV);  // accumulators when k is not fixed
  const T* bs = st.ws.data() + (kk + 1) * B;                // b(x) per sample
  std::fill(gtab + i0 * p.nc * p.P * CH, gtab + i1 * p.nc * p.P * CH, T(0));  // this thread's slices
  for (int64_t n0 = 0; n0 < N; n0 += B)
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t cnt = std::min(B, N - n0);
      sort_input<T, KT>(p, i, n0, cnt, B, st);
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
              for (int v = 0; v < NV; ++v) accb[v] += bs[n] * vload(gb + n * W + c * CH + v * L);
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
            for (int v = 0; v < NV; ++v) accb[v] += bs[n] * gv[v];
            for (int j = 0; j <= kk; ++j) {
              const T wj = st.ws[j * B + n];
              for (int v = 0; v < NV; ++v) acc[j * NV + v] += wj * gv[v];
            }
          }
          for (int j = 0; j <= kk; ++j) {  // basis s - k + j, where it exists
            const int64_t basis = s - kk + j;
            if (basis < 0 || basis >= p.P - 1) continue;
            for (int v = 0; v < NV; ++v) vadd(slice + (1 + basis) * CH + v * L, acc[j * NV + v]);
          }
        }
        for (int v = 0; v < NV; ++v) vadd(slice + v * L, accb[v]);
      }
    }
}

}  // namespace

torch::Tensor sparse_table_grad(torch::Tensor g, torch::Tensor x, torch::Tensor b, torch::Tensor grid,
                                torch::Tensor m, int64_t k, int64_t chunk) {
  kanlab_basis::check_inputs(x, b, grid, m, k);
  const int64_t N = x.size(0), n_in = x.size(1), W = g.size(-1);
  TORCH_CHECK(g.is_contiguous() && g.scalar_type() == x.scalar_type() && g.dim() == 2 && g.size(0) == N &&
              chunk > 0 && W % chunk == 0, "g: contiguous (N, W), W a multiple of chunk");
  const int64_t nv = check_layout(x, grid, k, W / chunk, chunk);
  TORCH_CHECK(N < (int64_t(1) << 31), "batch too large");
  const int64_t P = grid.size(1) - k;  // nb + 1
  auto gtab = torch::empty({n_in, W / chunk, P, chunk}, x.options());  // zeroed by the owning threads
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_table_grad", [&] {
    std::vector<scalar_t> ih, c;
    kanlab_basis::grid_constants<scalar_t>(grid, ih, c);
    const Problem<scalar_t> p{x.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(), nullptr, n_in, W / chunk, P,
                              int(k), int(grid.size(1) - 1), ih.data(), c.data(), m.data_ptr<scalar_t>()};
    const scalar_t* gp = g.data_ptr<scalar_t>();
    scalar_t* gtp = gtab.data_ptr<scalar_t>();
    dispatch(k, nv, [&](auto kt, auto nvt) {
      kanlab_basis::over_rows(n_in, N * (k + 2) * W, [&](int64_t i0, int64_t i1) {
        table_grad_inputs<scalar_t, decltype(kt)::value, decltype(nvt)::value>(p, N, gp, gtp, i0, i1);
      });
    });
  });
  return gtab;
}

TORCH_LIBRARY_FRAGMENT(kanlab, m) {
  // g (N, nc CH), x, b(x), grid, m, k, CH -> gradient of the table (n_in, nc, nb + 1, CH)
  m.def("sparse_table_grad(Tensor g, Tensor x, Tensor b, Tensor grid, Tensor m, int k, int chunk) -> Tensor",
        &sparse_table_grad);
}
