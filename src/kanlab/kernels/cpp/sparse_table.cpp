// The weight table of the fused sparse kernels (sparse_kan.cpp) from a KAN layer's
// parameters, and the parameters' gradients from the table's gradient.
//
// tab (n_in, nc, nb + 1, ch): tab[i, c, 0, o'] = scale_base[o, i],
// tab[i, c, 1 + m, o'] = scale_spline[o, i] coef[o, i, m] for output o = c ch + o', zero in
// the padding columns; k zero rows of ch before and after it in its storage (the kernels
// read rows of non-existent bases there, with zero weights).
#include <torch/extension.h>

#include <algorithm>
#include <vector>

#include "uniform_basis.h"

namespace {

// fn(i, o, c, o') for every (input, output o = c ch + o') pair: blocks of inputs whose table
// slices fit in ~32 KiB (L1), output by output within a block, so the parameters (o, i, ...)
// are read in runs of the block's inputs; blocks split across threads. G = 5 takes ~14 inputs
// a block, G >= 50 one (input by input).
template <typename F>
void input_blocks(int64_t n_in, int64_t n_out, int64_t ch, int64_t slice_bytes, F fn) {
  const int64_t block = std::max<int64_t>(1, (int64_t(32) << 10) / slice_bytes);
  const int64_t n_blocks = (n_in + block - 1) / block;
  kanlab_basis::over_rows(n_blocks, block * slice_bytes / 4, [&](int64_t b0, int64_t b1) {
    for (int64_t i0 = b0 * block; i0 < std::min(n_in, b1 * block); i0 += block) {
      const int64_t i1 = std::min(n_in, i0 + block);
      for (int64_t o = 0, c = 0, oc = 0; o < n_out; ++o) {
        for (int64_t i = i0; i < i1; ++i) fn(i, o, c, oc);
        if (++oc == ch) oc = 0, ++c;
      }
    }
  });
}

}  // namespace

// coef (n_out, n_in, nb), scales (n_out, n_in) -> tab.
torch::Tensor sparse_table(torch::Tensor coef, torch::Tensor sb, torch::Tensor ss, int64_t k, int64_t ch) {
  TORCH_CHECK(coef.dim() == 3 && coef.is_contiguous() && sb.is_contiguous() && ss.is_contiguous() &&
              sb.sizes() == coef.sizes().slice(0, 2) && ss.sizes() == sb.sizes() &&
              sb.scalar_type() == coef.scalar_type() && ss.scalar_type() == coef.scalar_type(),
              "coef (n_out, n_in, nb), scales (n_out, n_in): contiguous, one dtype");
  const int64_t n_out = coef.size(0), n_in = coef.size(1), nb = coef.size(2), P = nb + 1;
  const int64_t nc = (n_out + ch - 1) / ch;
  auto storage = torch::zeros({n_in * nc * P * ch + 2 * k * ch}, coef.options());
  auto tab = storage.narrow(0, k * ch, n_in * nc * P * ch).view({n_in, nc, P, ch});
  AT_DISPATCH_FLOATING_TYPES(coef.scalar_type(), "sparse_table", [&] {
    const scalar_t* cp = coef.data_ptr<scalar_t>();
    const scalar_t* sbp = sb.data_ptr<scalar_t>();
    const scalar_t* ssp = ss.data_ptr<scalar_t>();
    scalar_t* tp = tab.data_ptr<scalar_t>();
    input_blocks(n_in, n_out, ch, nc * P * ch * int64_t(sizeof(scalar_t)), [&](int64_t i, int64_t o, int64_t c, int64_t oc) {
      scalar_t* col = tp + ((i * nc + c) * P) * ch + oc;
      const scalar_t s = ssp[o * n_in + i];
      const scalar_t* cr = cp + (o * n_in + i) * nb;
      col[0] = sbp[o * n_in + i];
      for (int64_t m = 0; m < nb; ++m) col[(1 + m) * ch] = s * cr[m];
    });
  });
  return tab;
}

// Gradients of coef and both scales from the table gradient (the inverse map of sparse_table).
std::vector<torch::Tensor> sparse_param_grads(torch::Tensor gtab, torch::Tensor coef, torch::Tensor ss) {
  TORCH_CHECK(gtab.dim() == 4 && gtab.is_contiguous() && coef.is_contiguous() && ss.is_contiguous() &&
              gtab.scalar_type() == coef.scalar_type() && ss.scalar_type() == coef.scalar_type() &&
              gtab.size(0) == coef.size(1) && gtab.size(2) == coef.size(2) + 1 &&
              gtab.size(1) * gtab.size(3) >= coef.size(0), "gtab: (n_in, nc, nb + 1, ch), like coef");
  const int64_t n_out = coef.size(0), n_in = coef.size(1), nb = coef.size(2), P = gtab.size(2);
  const int64_t nc = gtab.size(1), ch = gtab.size(3);
  auto gcoef = torch::empty_like(coef);
  auto gsb = torch::empty_like(ss), gss = torch::empty_like(ss);
  AT_DISPATCH_FLOATING_TYPES(coef.scalar_type(), "sparse_param_grads", [&] {
    const scalar_t* gp = gtab.data_ptr<scalar_t>();
    const scalar_t* cp = coef.data_ptr<scalar_t>();
    const scalar_t* ssp = ss.data_ptr<scalar_t>();
    scalar_t* gcp = gcoef.data_ptr<scalar_t>();
    scalar_t* gsbp = gsb.data_ptr<scalar_t>();
    scalar_t* gssp = gss.data_ptr<scalar_t>();
    input_blocks(n_in, n_out, ch, nc * P * ch * int64_t(sizeof(scalar_t)), [&](int64_t i, int64_t o, int64_t c, int64_t oc) {
      const scalar_t* col = gp + ((i * nc + c) * P) * ch + oc;
      const scalar_t s = ssp[o * n_in + i];
      const scalar_t* cr = cp + (o * n_in + i) * nb;
      scalar_t* gr = gcp + (o * n_in + i) * nb;
      scalar_t dot = 0;
      for (int64_t m = 0; m < nb; ++m) {
        const scalar_t gm = col[(1 + m) * ch];
        gr[m] = s * gm;
        dot += cr[m] * gm;
      }
      gsbp[o * n_in + i] = col[0];
      gssp[o * n_in + i] = dot;
    });
  });
  return {gcoef, gsb, gss};
}

void register_sparse_table(pybind11::module& mod) {
  mod.def("sparse_table", &sparse_table, "coef, scale_base, scale_spline, k, CH -> table (n_in, nc, nb + 1, CH), k zero rows either side");
  mod.def("sparse_param_grads", &sparse_param_grads,
          "table gradient, coef, scale_spline -> [d coef, d scale_base, d scale_spline]");
}
