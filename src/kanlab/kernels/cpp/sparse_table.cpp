// The weight table of the fused sparse kernels (sparse_kan.cpp) from a KAN layer's
// parameters, and the parameters' gradients from the table's gradient.
//
// tab (n_in, nc, nb + 1, ch): tab[i, c, 0, o'] = scale_base[o, i],
// tab[i, c, 1 + m, o'] = scale_spline[o, i] coef[o, i, m] for output o = c ch + o', zero in
// the padding columns; k zero rows of ch before and after it in its storage (the kernels
// read rows of non-existent bases there, with zero weights).
//
// Both directions are transposes: the parameters run along (input, basis) for each output,
// the table along outputs for each (input, row). They move L x L tiles (L = vector lanes)
// through registers (kanlab_sparse::transpose): L vector loads, log2(L) L shuffles and L
// vector stores per tile, each cache line read and written once. Threads own ranges of inputs.
#include <torch/all.h>
#include <torch/library.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "sparse_common.h"
#include "uniform_basis.h"

namespace {

using kanlab_sparse::Vec;
using kanlab_sparse::kLanes;
using kanlab_sparse::transpose;
using kanlab_sparse::vadd;
using kanlab_sparse::vload;
using kanlab_sparse::vstore;

// Where the parameters and the table put each entry.
struct Layout {
  int64_t n_out, n_in, nb, P, nc, ch;
  // offset of output o in a table row (chunk o / ch, column o % ch)
  int64_t col(int64_t o) const { return (o / ch) * P * ch + o % ch; }
  // offset of input i's row p (chunk 0)
  int64_t row(int64_t i, int64_t p) const { return (i * nc * P + p) * ch; }
};

// tile(o0, j) for each full tile of L outputs o0.. and L columns j.. of the n_out x [j0, j1)
// matrix, elem(o, j) for the entries no tile covers.
template <int L, typename Tile, typename Elem>
void over_tiles(int64_t n_out, int64_t j0, int64_t j1, Tile tile, Elem elem) {
  int64_t o0 = 0;
  for (; o0 + L <= n_out; o0 += L) {
    int64_t j = j0;
    for (; j + L <= j1; j += L) tile(o0, j);
    for (; j < j1; ++j)
      for (int64_t o = o0; o < o0 + L; ++o) elem(o, j);
  }
  for (int64_t o = o0; o < n_out; ++o)
    for (int64_t j = j0; j < j1; ++j) elem(o, j);
}

// fn(i0, i1) over ranges of inputs on the threads.
template <typename F>
void over_inputs(const Layout& lay, int64_t elem_size, F fn) {
  kanlab_basis::over_rows(lay.n_in, lay.nc * lay.P * lay.ch * elem_size / 4, fn);
}

// For the columns j = i nb + m of coef with i in [i0, i1): rows[j], the table offset of input
// i's row 1 + m (chunk 0), and inputs[j] = i n_out, the offset of input i in the transposed scales.
void column_offsets(const Layout& lay, int64_t i0, int64_t i1, int64_t* rows, int64_t* inputs) {
  for (int64_t i = i0, j = i0 * lay.nb; i < i1; ++i)
    for (int64_t m = 0; m < lay.nb; ++m, ++j) rows[j] = lay.row(i, 1 + m), inputs[j] = i * lay.n_out;
}

// An (n_out, n_in) matrix m and its per-input columns: entry (o, i) of m is *at(i, o), where
// at(i, o0) .. at(i, o0) + L - 1 hold the outputs o0 .. o0 + L - 1 of a tile. Inputs [i0, i1).
template <typename T, typename At>
void to_columns(const T* m, const Layout& lay, int64_t i0, int64_t i1, At at) {
  constexpr int L = kLanes<T>;
  over_tiles<L>(lay.n_out, i0, i1, [&](int64_t o0, int64_t i) {
    Vec<T> v[L];
    for (int t = 0; t < L; ++t) v[t] = vload(m + (o0 + t) * lay.n_in + i);
    transpose(v);
    for (int t = 0; t < L; ++t) vstore(at(i + t, o0), v[t]);
  }, [&](int64_t o, int64_t i) { *at(i, o) = m[o * lay.n_in + i]; });
}

template <typename T, typename At>
void from_columns(T* m, const Layout& lay, int64_t i0, int64_t i1, At at) {
  constexpr int L = kLanes<T>;
  over_tiles<L>(lay.n_out, i0, i1, [&](int64_t o0, int64_t i) {
    Vec<T> v[L];
    for (int t = 0; t < L; ++t) v[t] = vload(at(i + t, o0));
    transpose(v);
    for (int t = 0; t < L; ++t) vstore(m + (o0 + t) * lay.n_in + i, v[t]);
  }, [&](int64_t o, int64_t i) { m[o * lay.n_in + i] = *at(i, o); });
}

// ssT[i n_out + o] = ss[o, i] for inputs [i0, i1).
template <typename T>
void transpose_inputs(const T* ss, T* ssT, const Layout& lay, int64_t i0, int64_t i1) {
  to_columns(ss, lay, i0, i1, [&](int64_t i, int64_t o) { return ssT + i * lay.n_out + o; });
}

template <typename T>
void build_table(const T* cp, const T* sbp, const T* ssp, T* tp, const Layout& lay) {
  constexpr int L = kLanes<T>;
  const int64_t n_out = lay.n_out, n_in = lay.n_in, R = n_in * lay.nb;
  std::unique_ptr<T[]> ssT(new T[n_in * n_out]);
  std::vector<int64_t> rows(R), inputs(R);
  over_inputs(lay, sizeof(T), [&](int64_t i0, int64_t i1) {
    column_offsets(lay, i0, i1, rows.data(), inputs.data());
    transpose_inputs(ssp, ssT.get(), lay, i0, i1);
    to_columns(sbp, lay, i0, i1, [&](int64_t i, int64_t o) { return tp + lay.row(i, 0) + lay.col(o); });  // row 0
    over_tiles<L>(n_out, i0 * lay.nb, i1 * lay.nb, [&](int64_t o0, int64_t j) {  // rows 1..nb
      Vec<T> v[L];
      for (int t = 0; t < L; ++t) v[t] = vload(cp + (o0 + t) * R + j);
      transpose(v);
      const int64_t col = lay.col(o0);
      for (int t = 0; t < L; ++t) vstore(tp + rows[j + t] + col, v[t] * vload(ssT.get() + inputs[j + t] + o0));
    }, [&](int64_t o, int64_t j) { tp[rows[j] + lay.col(o)] = cp[o * R + j] * ssT[inputs[j] + o]; });
    const int64_t pad = lay.nc * lay.ch - n_out;  // padding columns, from output n_out on
    for (int64_t i = i0; i < i1 && pad > 0; ++i)
      for (int64_t p = 0; p < lay.P; ++p) std::fill_n(tp + lay.row(i, p) + lay.col(n_out), pad, T(0));
  });
}

template <typename T>
void param_grads(const T* gp, const T* cp, const T* ssp, T* gcp, T* gsbp, T* gssp, const Layout& lay) {
  constexpr int L = kLanes<T>;
  const int64_t n_out = lay.n_out, n_in = lay.n_in, R = n_in * lay.nb;
  std::unique_ptr<T[]> ssT(new T[n_in * n_out]), gssT(new T[n_in * n_out]);
  std::vector<int64_t> rows(R), inputs(R);
  over_inputs(lay, sizeof(T), [&](int64_t i0, int64_t i1) {
    column_offsets(lay, i0, i1, rows.data(), inputs.data());
    transpose_inputs(ssp, ssT.get(), lay, i0, i1);
    std::fill(gssT.get() + i0 * n_out, gssT.get() + i1 * n_out, T(0));
    // d coef[o, j] = ss[o, i] gtab[row j, o]; d ss[o, i] = sum_m coef[o, i, m] gtab[row j, o]
    over_tiles<L>(n_out, i0 * lay.nb, i1 * lay.nb, [&](int64_t o0, int64_t j) {
      Vec<T> g[L], c[L];
      const int64_t col = lay.col(o0);
      for (int t = 0; t < L; ++t) g[t] = vload(gp + rows[j + t] + col), c[t] = vload(cp + (o0 + t) * R + j);
      transpose(c);
      for (int t = 0; t < L; ++t) {
        vadd(gssT.get() + inputs[j + t] + o0, g[t] * c[t]);
        g[t] *= vload(ssT.get() + inputs[j + t] + o0);
      }
      transpose(g);
      for (int t = 0; t < L; ++t) vstore(gcp + (o0 + t) * R + j, g[t]);
    }, [&](int64_t o, int64_t j) {
      const T g = gp[rows[j] + lay.col(o)];
      gssT[inputs[j] + o] += g * cp[o * R + j];
      gcp[o * R + j] = g * ssT[inputs[j] + o];
    });
    // d scale_base from row 0, d scale_spline from its transpose
    from_columns(gsbp, lay, i0, i1, [&](int64_t i, int64_t o) { return gp + lay.row(i, 0) + lay.col(o); });
    from_columns(gssp, lay, i0, i1, [&](int64_t i, int64_t o) { return gssT.get() + i * n_out + o; });
  });
}

// float32 / float64, and a chunk of whole vectors.
void check_chunk(const torch::Tensor& coef, int64_t ch) {
  TORCH_CHECK(coef.scalar_type() == torch::kFloat || coef.scalar_type() == torch::kDouble, "float32 or float64");
  const int64_t lanes = coef.scalar_type() == torch::kFloat ? kLanes<float> : kLanes<double>;
  TORCH_CHECK(ch > 0 && ch % lanes == 0, "chunk width: a multiple of ", lanes, " for this dtype, got ", ch);
}

}  // namespace

// coef (n_out, n_in, nb), scales (n_out, n_in) -> tab.
torch::Tensor sparse_table(torch::Tensor coef, torch::Tensor sb, torch::Tensor ss, int64_t k, int64_t ch) {
  TORCH_CHECK(coef.dim() == 3 && coef.is_contiguous() && sb.is_contiguous() && ss.is_contiguous() &&
              sb.sizes() == coef.sizes().slice(0, 2) && ss.sizes() == sb.sizes() &&
              sb.scalar_type() == coef.scalar_type() && ss.scalar_type() == coef.scalar_type(),
              "coef (n_out, n_in, nb), scales (n_out, n_in): contiguous, one dtype");
  check_chunk(coef, ch);
  const int64_t n_out = coef.size(0), n_in = coef.size(1), nb = coef.size(2), P = nb + 1;
  const Layout lay{n_out, n_in, nb, P, (n_out + ch - 1) / ch, ch};
  const int64_t size = n_in * lay.nc * P * ch;
  auto storage = torch::empty({size + 2 * k * ch}, coef.options());
  storage.narrow(0, 0, k * ch).zero_();
  storage.narrow(0, k * ch + size, k * ch).zero_();
  auto tab = storage.narrow(0, k * ch, size).view({n_in, lay.nc, P, ch});
  AT_DISPATCH_FLOATING_TYPES(coef.scalar_type(), "sparse_table", [&] {
    build_table(coef.data_ptr<scalar_t>(), sb.data_ptr<scalar_t>(), ss.data_ptr<scalar_t>(), tab.data_ptr<scalar_t>(), lay);
  });
  return tab;
}

// Gradients of coef and both scales from the table gradient (the inverse map of sparse_table).
std::vector<torch::Tensor> sparse_param_grads(torch::Tensor gtab, torch::Tensor coef, torch::Tensor ss) {
  TORCH_CHECK(gtab.dim() == 4 && gtab.is_contiguous() && coef.is_contiguous() && ss.is_contiguous() &&
              gtab.scalar_type() == coef.scalar_type() && ss.scalar_type() == coef.scalar_type() &&
              gtab.size(0) == coef.size(1) && gtab.size(2) == coef.size(2) + 1 &&
              gtab.size(1) * gtab.size(3) >= coef.size(0) && (gtab.size(1) - 1) * gtab.size(3) < coef.size(0),
              "gtab: (n_in, nc, nb + 1, ch), like coef");
  check_chunk(coef, gtab.size(3));
  const Layout lay{coef.size(0), coef.size(1), coef.size(2), gtab.size(2), gtab.size(1), gtab.size(3)};
  auto gcoef = torch::empty_like(coef);
  auto gsb = torch::empty_like(ss), gss = torch::empty_like(ss);
  AT_DISPATCH_FLOATING_TYPES(coef.scalar_type(), "sparse_param_grads", [&] {
    param_grads(gtab.data_ptr<scalar_t>(), coef.data_ptr<scalar_t>(), ss.data_ptr<scalar_t>(), gcoef.data_ptr<scalar_t>(),
                gsb.data_ptr<scalar_t>(), gss.data_ptr<scalar_t>(), lay);
  });
  return {gcoef, gsb, gss};
}

TORCH_LIBRARY_FRAGMENT(kanlab, m) {
  // coef, scale_base, scale_spline, k, CH -> table (n_in, nc, nb + 1, CH), k zero rows either side
  m.def("sparse_table(Tensor coef, Tensor sb, Tensor ss, int k, int ch) -> Tensor", &sparse_table);
  // table gradient, coef, scale_spline -> [d coef, d scale_base, d scale_spline]
  m.def("sparse_param_grads(Tensor gtab, Tensor coef, Tensor ss) -> Tensor[]", &sparse_param_grads);
}
