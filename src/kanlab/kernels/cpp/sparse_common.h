// Shared pieces of the fused sparse kernels (sparse_kan.cpp, sparse_table_grad.cpp,
// sparse_table.cpp): 64-byte vectors (GCC vector extensions: any x86 / ARM target,
// -march=native picks the instructions), register transposes, the problem description,
// compile-time dispatch on k and the chunk width, and argument checks.
#pragma once

#include <torch/all.h>

#include <cstring>
#include <type_traits>

namespace kanlab_sparse {

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

// Horizontal sums of L = kLanes<T> vectors at once: lane q of the result is the sum of v[q]'s
// lanes (v is overwritten). A halving tree over pairs, two shuffles and one add per pair and
// level: about 3 operations per vector instead of hsum's 8 (and no serial chain).
inline Vec<float> hsums(Vec<float>* v) {
  typedef int32_t I __attribute__((vector_size(64)));
  const I l1 = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
  const I h1 = {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
  const I l2 = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};
  const I h2 = {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31};
  const I l3 = {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29};
  const I h3 = {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31};
  const I l4 = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
  const I h4 = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
  for (int q = 0; q < 8; ++q) v[q] = __builtin_shuffle(v[2 * q], v[2 * q + 1], l1) + __builtin_shuffle(v[2 * q], v[2 * q + 1], h1);
  for (int q = 0; q < 4; ++q) v[q] = __builtin_shuffle(v[2 * q], v[2 * q + 1], l2) + __builtin_shuffle(v[2 * q], v[2 * q + 1], h2);
  for (int q = 0; q < 2; ++q) v[q] = __builtin_shuffle(v[2 * q], v[2 * q + 1], l3) + __builtin_shuffle(v[2 * q], v[2 * q + 1], h3);
  return __builtin_shuffle(v[0], v[1], l4) + __builtin_shuffle(v[0], v[1], h4);
}
inline Vec<double> hsums(Vec<double>* v) {
  typedef int64_t I __attribute__((vector_size(64)));
  const I l1 = {0, 1, 2, 3, 8, 9, 10, 11}, h1 = {4, 5, 6, 7, 12, 13, 14, 15};
  const I l2 = {0, 1, 4, 5, 8, 9, 12, 13}, h2 = {2, 3, 6, 7, 10, 11, 14, 15};
  const I l3 = {0, 2, 4, 6, 8, 10, 12, 14}, h3 = {1, 3, 5, 7, 9, 11, 13, 15};
  for (int q = 0; q < 4; ++q) v[q] = __builtin_shuffle(v[2 * q], v[2 * q + 1], l1) + __builtin_shuffle(v[2 * q], v[2 * q + 1], h1);
  for (int q = 0; q < 2; ++q) v[q] = __builtin_shuffle(v[2 * q], v[2 * q + 1], l2) + __builtin_shuffle(v[2 * q], v[2 * q + 1], h2);
  return __builtin_shuffle(v[0], v[1], l3) + __builtin_shuffle(v[0], v[1], h3);
}

// In-place transpose of the L x L matrix whose row t is v[t] (L = kLanes): afterwards lane l
// of v[t] is the old lane t of v[l]. One level per bit h of the lane index: rows r and r + h
// ((r & h) == 0) trade their off-diagonal h x h blocks (lo takes a[q] or b[q - h], hi a[q + h]
// or b[q]); the levels commute. log2(L) L shuffles, instead of L * L scalar moves.
template <typename V, typename I>
inline void trade_blocks(V* v, int lanes, int h, const I& lo, const I& hi) {
  for (int r = 0; r < lanes; ++r) {
    if (r & h) continue;
    const V a = v[r], b = v[r + h];
    v[r] = __builtin_shuffle(a, b, lo);
    v[r + h] = __builtin_shuffle(a, b, hi);
  }
}
inline void transpose(Vec<float>* v) {
  typedef int32_t I __attribute__((vector_size(64)));
  trade_blocks(v, 16, 8, I{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
               I{8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31});
  trade_blocks(v, 16, 4, I{0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
               I{4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31});
  trade_blocks(v, 16, 2, I{0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
               I{2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31});
  trade_blocks(v, 16, 1, I{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30},
               I{1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31});
}
inline void transpose(Vec<double>* v) {
  typedef int64_t I __attribute__((vector_size(64)));
  trade_blocks(v, 8, 4, I{0, 1, 2, 3, 8, 9, 10, 11}, I{4, 5, 6, 7, 12, 13, 14, 15});
  trade_blocks(v, 8, 2, I{0, 1, 8, 9, 4, 5, 12, 13}, I{2, 3, 10, 11, 6, 7, 14, 15});
  trade_blocks(v, 8, 1, I{0, 8, 2, 10, 4, 12, 6, 14}, I{1, 9, 3, 11, 5, 13, 7, 15});
}

template <typename T>
struct Problem {
  const T* x;    // (N, n_in)
  const T* b;    // like x: b(x) or b'(x)
  const T* tab;  // (n_in, nc, P, CH)
  int64_t n_in, nc, P;
  int k, n_int;
  const T* ih;   // (n_in) 1 / h
  const T* c;    // (n_in) -t0 / h
  const T* m;    // (k + 1, k + 1) polynomial coefficients (values or derivatives in f)
};

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

// Checks the table / gradient layout (n_in, nc, nb + 1, CH) and returns NV = CH / lanes.
inline int64_t check_layout(const torch::Tensor& x, const torch::Tensor& grid, int64_t k, int64_t nc, int64_t ch) {
  const int64_t lanes = x.scalar_type() == torch::kFloat ? kLanes<float> : kLanes<double>;
  const int64_t nv = ch / lanes;
  TORCH_CHECK(ch % lanes == 0 && (nv == 1 || nv == 2 || nv == 4), "chunk: 1, 2 or 4 vectors of ", lanes);
  TORCH_CHECK(x.size(1) * nc * (grid.size(1) - k) * ch < (int64_t(1) << 31), "table too large");
  return nv;
}

inline void check_tab(const torch::Tensor& tab, const torch::Tensor& x, const torch::Tensor& grid, int64_t k) {
  TORCH_CHECK(tab.dim() == 4 && tab.is_contiguous() && tab.scalar_type() == x.scalar_type() &&
              tab.size(0) == x.size(1) && tab.size(2) == grid.size(1) - k,
              "tab: contiguous (n_in, nc, nb + 1, CH)");
  const int64_t pad = k * tab.size(3);  // k zero rows before and after, in the same storage
  TORCH_CHECK(tab.storage_offset() >= pad &&
              int64_t(tab.storage().nbytes()) >= (tab.storage_offset() + tab.numel() + pad) * tab.element_size(),
              "tab: needs k zero rows before and after it (build it with sparse_table)");
}

}  // namespace kanlab_sparse
