// The AGC ttbar analysis's jet resolution variation: deterministic, so runs are reproducible.
#ifndef ANALYSIS_AGC_H
#define ANALYSIS_AGC_H

#include <Math/QuantFuncMathCore.h> // gaussian_quantile (the system compiler of the step cache needs it)
#include <ROOT/RVec.hxx>

namespace agc {

// 1 + sign * q per jet, q the Gaussian quantile (mean 0, sigma 0.05) of
// u = 0.001 * ((int)(pT * 1000) mod 1000) + 0.0005.
template <typename T>
ROOT::RVecD resolution_factor(const ROOT::RVec<T> &pt, double sign)
{
   ROOT::RVecD out(pt.size());
   for (std::size_t i = 0; i < pt.size(); ++i) {
      const double u = 0.001 * static_cast<double>(static_cast<long long>(double(pt[i]) * 1000.) % 1000) + 0.0005;
      out[i] = 1. + sign * ROOT::Math::gaussian_quantile(u, 0.05);
   }
   return out;
}

} // namespace agc

#endif
