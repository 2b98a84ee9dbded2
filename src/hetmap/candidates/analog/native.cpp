// CPU kernels for the two steps of the analog layer that torch cannot do in one pass:
//
// clip_grad: lightning's exact input-range gradient of a convolution tile slice. Every
//   clipped input element p (x >= r or x <= -r) feeds up to k_h x k_w unfolded entries; the
//   gradient of entry (p, k) is gout[output position reading p through k] . w[:, c(p), k].
//   The sum over clipped entries of min(sign(p) * that, 0), the number of clipped entries per
//   group, and the straight-through input gradient (zero where |x| > r, in place) come from
//   one pass over the layer input (no copy of the slice's channels), visiting only the
//   clipped elements' pairs; the input gradient is written into the layer's, in place.
// adc: output noise (standard normal, drawn here with a ziggurat sampler), ADC quantization
//   (round half to even) and the output bound, in place, plus the mask of unclipped outputs
//   packed to one bit an output (what the backward keeps); where_bits applies it.
//
// Both split work into fixed chunks whose results do not depend on the number of threads.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdint>
#include <vector>

namespace {

// ---- random numbers: splitmix64 seeds a xoshiro256++ stream per chunk -------------------
inline uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

struct Xoshiro {
  uint64_t s[4];
  explicit Xoshiro(uint64_t seed) {
    for (auto& v : s) v = splitmix64(seed);
  }
  inline uint64_t next() {
    const uint64_t result = rotl(s[0] + s[3], 23) + s[0];
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
  // uniform in (0, 1)
  inline double uniform() { return ((next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
};

// Marsaglia & Tsang's 128-layer ziggurat (J. Stat. Softw. 5(8), 2000), with the layer index
// and the signed 32-bit value taken from independent bits of a 64-bit draw.
struct Ziggurat {
  uint32_t kn[128];
  double wn[128], fn[128];
  Ziggurat() {
    const double m1 = 2147483648.0;
    double dn = 3.442619855899, tn = dn, vn = 9.91256303526217e-3;
    const double q = vn / std::exp(-0.5 * dn * dn);
    kn[0] = static_cast<uint32_t>((dn / q) * m1);
    kn[1] = 0;
    wn[0] = q / m1;
    wn[127] = dn / m1;
    fn[0] = 1.0;
    fn[127] = std::exp(-0.5 * dn * dn);
    for (int i = 126; i >= 1; --i) {
      dn = std::sqrt(-2.0 * std::log(vn / dn + std::exp(-0.5 * dn * dn)));
      kn[i + 1] = static_cast<uint32_t>((dn / tn) * m1);
      tn = dn;
      fn[i] = std::exp(-0.5 * dn * dn);
      wn[i] = dn / m1;
    }
  }
  inline double sample(Xoshiro& rng) const {
    for (;;) {
      const uint64_t u = rng.next();
      const int32_t hz = static_cast<int32_t>(u >> 32);
      const int iz = static_cast<int>(u & 127);
      const uint32_t mag = hz < 0 ? static_cast<uint32_t>(-static_cast<int64_t>(hz))
                                  : static_cast<uint32_t>(hz);
      const double x = hz * wn[iz];
      if (mag < kn[iz]) return x;
      if (iz == 0) {  // the tail beyond r
        const double r = 3.442619855899;
        double a, b;
        do {
          a = -std::log(rng.uniform()) / r;
          b = -std::log(rng.uniform());
        } while (b + b < a * a);
        return hz > 0 ? r + a : -r - a;
      }
      if (fn[iz] + rng.uniform() * (fn[iz - 1] - fn[iz]) < std::exp(-0.5 * x * x)) return x;
    }
  }
};

const Ziggurat& ziggurat() {
  static const Ziggurat z;
  return z;
}

constexpr int64_t kChunk = 1 << 14;

// Dot product with eight independent partial sums: one dependent add chain of length n
// costs four cycles an element, eight lanes let the compiler use one vector FMA.
inline float dot8(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) +
         tail;
}

}  // namespace

// bits[j] = mask[8j] | mask[8j + 1] << 1 | ... (the last byte padded with zeros)
inline void pack_bits(const bool* mask, int64_t len, uint8_t* bits) {
  for (int64_t j = 0; j * 8 < len; ++j) {
    uint8_t b = 0;
    const int64_t m = std::min<int64_t>(8, len - j * 8);
    for (int64_t t = 0; t < m; ++t) b |= static_cast<uint8_t>(mask[j * 8 + t]) << t;
    bits[j] = b;
  }
}

struct Segment {
  float* y;
  bool* keep;
  const float* z;
  int64_t len;
};

// Noise, ADC quantization (torch's arithmetic: divide by the step, round half to even,
// multiply back) and bound over `len` outputs of one channel (kVaries = false) or of
// consecutive channels (linear rows, kVaries = true). Returns how many were clipped.
template <bool kVaries>
int64_t adc_segment(Segment seg, const float* s, const float* b, const float* r,
                    bool has_noise, bool has_bound, bool quantize) {
  float* __restrict__ y = seg.y;
  bool* __restrict__ keep = seg.keep;
  const float* __restrict__ z = seg.z;
  const float tiny = std::numeric_limits<float>::min();
  int64_t lost = 0;
  for (int64_t i = 0; i < seg.len; ++i) {
    const int64_t c = kVaries ? i : 0;
    float v = y[i];
    if (has_noise) v = v + z[i] * s[c];
    if (has_bound) {
      if (quantize) v = std::nearbyint(v / std::max(r[c], tiny)) * r[c];
      const bool ok = std::fabs(v) <= b[c];
      keep[i] = ok;
      lost += !ok;
      v = std::min(std::max(v, -b[c]), b[c]);
    }
    y[i] = v;
  }
  return lost;
}

// y: contiguous float32 (N, O, *spatial) or (..., O); `inner` = elements per (sample,
// channel) pair (prod(spatial), 1 for linear). std/bound: (O,) or empty. Returns the mask of
// outputs within the bound (empty when there is no bound) and how many were clipped.
std::tuple<torch::Tensor, int64_t> adc(torch::Tensor y, torch::Tensor std, torch::Tensor bound,
                                        double out_res, int64_t inner, int64_t seed) {
  TORCH_CHECK(y.is_contiguous() && y.scalar_type() == torch::kFloat, "adc: y must be contiguous float32");
  const int64_t n = y.numel();
  const int64_t channels = std.numel() > 0 ? std.numel() : bound.numel();
  const bool has_noise = std.numel() > 0, has_bound = bound.numel() > 0;
  TORCH_CHECK(channels > 0 && inner > 0, "adc: needs a noise std or a bound");
  TORCH_CHECK(!has_noise || !has_bound || std.numel() == bound.numel(),
              "adc: std and bound have different lengths");
  TORCH_CHECK(y.dim() >= 2 && n % (inner * channels) == 0 &&
                  (y.size(1) == channels || (inner == 1 && y.size(-1) == channels)),
              "adc: std/bound must have one entry per output channel");
  float* yp = y.data_ptr<float>();
  const float* sp = has_noise ? std.data_ptr<float>() : nullptr;
  const float* bp = has_bound ? bound.data_ptr<float>() : nullptr;
  // one bit per output (bit i % 8 of byte i / 8): the mask is kept for backward
  torch::Tensor keep = torch::empty({has_bound ? (n + 7) / 8 : 0}, y.options().dtype(torch::kByte));
  uint8_t* kp = has_bound ? keep.data_ptr<uint8_t>() : nullptr;
  const float res_den = static_cast<float>(out_res);
  std::vector<float> res(channels, 0.0f);  // the ADC step per channel, as torch computes it
  for (int64_t c = 0; c < channels && has_bound; ++c) res[c] = (2.0f * bp[c]) / res_den;
  const int64_t n_chunks = (n + kChunk - 1) / kChunk;
  std::vector<int64_t> clipped(n_chunks, 0);
  const float* resp = res.data();
  int64_t* clp = clipped.data();
  const Ziggurat* zp = &ziggurat();
  const bool quantize = has_bound && res_den > 0;
  // by value: a bool store may alias anything, so captured references would be reloaded
  at::parallel_for(0, n_chunks, 1, [=](int64_t c0, int64_t c1) {
    std::vector<float> zbuf(has_noise ? kChunk : 0);
    float* z = zbuf.data();
    std::vector<char> kbuf(has_bound ? kChunk : 0);  // this chunk's mask, a byte an output
    bool* kb = reinterpret_cast<bool*>(kbuf.data());
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t lo = ch * kChunk, hi = std::min(n, lo + kChunk);
      if (has_noise) {  // the chunk's noise first: the per-element step below vectorises
        Xoshiro rng(static_cast<uint64_t>(seed) ^ (0xD1B54A32D192ED03ULL * (ch + 1)));
        for (int64_t i = 0; i < hi - lo; ++i) z[i] = static_cast<float>(zp->sample(rng));
      }
      int64_t lost = 0;
      int64_t pos = lo % inner, c = (lo / inner) % channels;
      for (int64_t i = lo; i < hi;) {  // segments of one channel (conv) or one row (linear)
        const int64_t len = inner > 1 ? std::min(hi - i, inner - pos)
                                      : std::min(hi - i, channels - c);
        Segment seg{yp + i, has_bound ? kb + (i - lo) : nullptr, z + (i - lo), len};
        if (inner > 1) {
          lost += adc_segment<false>(seg, sp ? sp + c : nullptr, bp ? bp + c : nullptr,
                                     resp + c, has_noise, has_bound, quantize);
          pos += len;
          if (pos == inner) {
            pos = 0;
            if (++c == channels) c = 0;
          }
        } else {
          lost += adc_segment<true>(seg, sp ? sp + c : nullptr, bp ? bp + c : nullptr,
                                    resp + c, has_noise, has_bound, quantize);
          c += len;
          if (c == channels) c = 0;
        }
        i += len;
      }
      clp[ch] = lost;
      if (has_bound) pack_bits(kb, hi - lo, kp + lo / 8);  // kChunk is a multiple of 8
    }
  });
  int64_t total = 0;
  for (auto v : clipped) total += v;
  return {keep, total};
}

// Dot product of a contiguous `b` with `a` read at stride `sa` (1: `dot8`).
inline float dot_strided(const float* a, int64_t sa, const float* b, int64_t n) {
  if (sa == 1) return dot8(a, b, n);
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) acc += a[i * sa] * b[i];
  return acc;
}

// One tile row slice of a convolution. x: the layer input, contiguous float32 (N, Cf, H, W)
// (conv1d as H = 1), Cf = groups x cin_g; the slice holds channels [ch_lo, ch_lo + nch) of
// every group. gq: contiguous (N, groups x nch, H, W), the gradient of the slice's quantized
// input. gx: the layer's input gradient (N, Cf, H, W), or empty: the straight-through
// gradient (gq, zero where |x| > r) is written into it, added where the slice's channel is
// below `acc` (a kernel split with the previous slice, which wrote it already).
// gout: the slice's output gradient (N, groups x og, Ho, Wo), any strides (channels-last
// reads a row of og at once). wl: rows (k * groups + group) * nch + c, og columns; rmask:
// (nch * karea) bool or empty. Returns (sum of min(sign * unfolded gradient, 0), clipped
// unfolded entries per group).
std::tuple<double, torch::Tensor> clip_grad(torch::Tensor x, torch::Tensor gq, torch::Tensor gx,
                                            double r, bool need_r, torch::Tensor gout,
                                            torch::Tensor wl, torch::Tensor rmask,
                                            std::vector<int64_t> geo) {
  TORCH_CHECK(x.is_contiguous() && gq.is_contiguous() && wl.is_contiguous() &&
                  x.scalar_type() == torch::kFloat && gout.dim() == 4 &&
                  (gx.numel() == 0 || (gx.is_contiguous() && gx.sizes() == x.sizes())),
              "clip_grad: contiguous float32 tensors expected");
  const int64_t N = x.size(0), Cf = x.size(1), H = geo[0], W = geo[1];
  const int64_t Ho = geo[2], Wo = geo[3], kh = geo[4], kw = geo[5], sh = geo[6], sw = geo[7];
  const int64_t ph = geo[8], pw = geo[9], dh = geo[10], dw = geo[11], groups = geo[12];
  const int64_t ch_lo = geo[13], acc = geo[14];
  const int64_t C = gq.size(1), nch = C / groups, cin_g = Cf / groups, og = wl.size(1);
  const int64_t karea = kh * kw;
  TORCH_CHECK(gq.size(0) == N && C == groups * nch && ch_lo + nch <= cin_g &&
                  gout.size(1) == groups * og,
              "clip_grad: slice shapes do not match");
  const int64_t gsn = gout.stride(0), gsc = gout.stride(1), gsh = gout.stride(2),
                gsw = gout.stride(3);
  const float rf = static_cast<float>(r);
  const float* xp = x.data_ptr<float>();
  const float* gp = gq.data_ptr<float>();
  float* gxp = gx.numel() > 0 ? gx.data_ptr<float>() : nullptr;
  const float* glp = gout.data_ptr<float>();
  const float* wlp = wl.data_ptr<float>();
  const bool* mp = rmask.numel() > 0 ? rmask.data_ptr<bool>() : nullptr;
  std::vector<int64_t> k_dh(karea), k_dw(karea);  // kernel offsets, so no division per pair
  for (int64_t k = 0; k < karea; ++k) {
    k_dh[k] = ph - (k / kw) * dh;
    k_dw[k] = pw - (k % kw) * dw;
  }
  const bool unit_stride = sh == 1 && sw == 1;
  // one partial sum per (sample, channel), reduced in order afterwards: the result does not
  // depend on how parallel_for splits the work
  std::vector<double> part_total(need_r ? N * C : 0, 0.0), part_pairs(need_r ? N * C : 0, 0.0);
  double* pt = part_total.data();
  double* pp = part_pairs.data();
  const int64_t* kdh = k_dh.data();
  const int64_t* kdw = k_dw.data();
  // by value: locals the compiler keeps in registers instead of reloading through references
  at::parallel_for(0, N * C, 1, [=](int64_t b0, int64_t b1) {
    std::vector<int32_t> idx_buf(need_r ? H * W : 0);
    int32_t* idx = idx_buf.data();
    for (int64_t nc = b0; nc < b1; ++nc) {
      const int64_t n = nc / C, c = nc % C, grp = c / nch, ci = c % nch;
      int64_t pairs = 0;
      float t_channel = 0.0f;  // branch-free min + add per pair
      const int64_t full = (n * Cf + grp * cin_g + ch_lo + ci) * H * W;
      const float* xr = xp + full;
      const float* g = gp + nc * H * W;
      if (gxp != nullptr) {  // the straight-through gradient
        float* o = gxp + full;
        if (ci < acc) {
          for (int64_t p = 0; p < H * W; ++p) o[p] += (xr[p] > rf || xr[p] < -rf) ? 0.0f : g[p];
        } else {
          for (int64_t p = 0; p < H * W; ++p) o[p] = (xr[p] > rf || xr[p] < -rf) ? 0.0f : g[p];
        }
      }
      if (!need_r) continue;
      // first the clipped positions, without branches (they fall at random), then their pairs
      int64_t m = 0;
      for (int64_t p = 0; p < H * W; ++p) {
        idx[m] = static_cast<int32_t>(p);
        m += (xr[p] >= rf) | (xr[p] <= -rf);
      }
      for (int64_t j = 0; j < m; ++j) {
        const int64_t p = idx[j];
        const float sign = xr[p] >= rf ? 1.0f : -1.0f;
        const int64_t h = p / W, w = p - h * W;
        for (int64_t k = 0; k < karea; ++k) {
          if (mp && !mp[ci * karea + k]) continue;
          int64_t oh = h + kdh[k], ow = w + kdw[k];
          if (oh < 0 || ow < 0) continue;
          if (!unit_stride) {
            if (oh % sh || ow % sw) continue;
            oh /= sh;
            ow /= sw;
          }
          if (oh >= Ho || ow >= Wo) continue;
          const float* gr = glp + n * gsn + grp * og * gsc + oh * gsh + ow * gsw;
          const float* wr = wlp + ((k * groups + grp) * nch + ci) * og;
          t_channel += std::fmin(sign * dot_strided(gr, gsc, wr, og), 0.0f);
          pairs += 1;
        }
      }
      pp[nc] = static_cast<double>(pairs);
      pt[nc] = t_channel;
    }
  });
  double total = 0.0;
  std::vector<double> counts(groups, 0.0);
  for (int64_t nc = 0; nc < static_cast<int64_t>(part_total.size()); ++nc) {
    total += pt[nc];
    counts[(nc % C) / nch] += pp[nc];
  }
  return {total, torch::tensor(counts, torch::kDouble)};
}

// grad where the bit of the packed mask `bits` (as `adc` returns it) is set, else 0.
torch::Tensor where_bits(torch::Tensor grad, torch::Tensor bits) {
  TORCH_CHECK(grad.is_contiguous() && grad.scalar_type() == torch::kFloat &&
                  bits.scalar_type() == torch::kByte && bits.numel() == (grad.numel() + 7) / 8,
              "where_bits: contiguous float32 gradient and its packed mask expected");
  torch::Tensor out = torch::empty_like(grad);
  const float* g = grad.data_ptr<float>();
  const uint8_t* b = bits.data_ptr<uint8_t>();
  float* o = out.data_ptr<float>();
  const int64_t n = grad.numel();
  at::parallel_for(0, (n + 7) / 8, kChunk / 8, [=](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t m = std::min<int64_t>(8, n - j * 8);
      for (int64_t t = 0; t < m; ++t) o[j * 8 + t] = (b[j] >> t) & 1 ? g[j * 8 + t] : 0.0f;
    }
  });
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("where_bits", &where_bits, "gradient where the packed output mask is set");
  m.def("adc", &adc, "noise + ADC quantization + bound, in place");
  m.def("clip_grad", &clip_grad, "exact unfolded input-range gradient of a conv tile slice");
}
