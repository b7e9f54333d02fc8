// Tag and probe (framework/extensions/tnp): the selections of tags and probes and the
// tag-probe pairs that fill the histogram `tnp`. Declared, and included by compiled steps, only
// for an analysis with a `tnp:` section (it joins the `cpp:` files: extensions/tnp/config.py).
#ifndef FRAMEWORK_TNP_HXX
#define FRAMEWORK_TNP_HXX

#include "../../engine/cpp/framework.hxx"

#include <ROOT/RVec.hxx>

#include <algorithm>
#include <cmath>

namespace fw {

// Element-wise AND of per-object boolean arrays of any element types, as 0/1 integers.
template <typename... Ts>
ROOT::RVecI mask_and(const Ts &...xs)
{
   const std::size_t n = common_length("tag-and-probe selections", xs...);
   ROOT::RVecI out(n, 1);
   for (std::size_t i = 0; i < n; ++i)
      out[i] = ((xs[i] != 0) && ...);
   return out;
}

template <typename... Ts>
ROOT::RVec<ROOT::RVecI> masks(const Ts &...xs)
{
   return {ROOT::RVecI(xs)...};
}

template <typename... Ts>
ROOT::RVec<ROOT::RVecD> values(const Ts &...xs)
{
   return {ROOT::RVecD(xs.begin(), xs.end())...};
}

// One entry per (tag definition, ordered tag-probe pair in the mass window, efficiency whose
// denominator the probe passes): what the tag-and-probe histogram is filled with.
struct TnpEntries {
   ROOT::RVecD tag, efficiency, passed, mass;
   ROOT::RVec<ROOT::RVecD> variables; // the probe's binning variables, one array each
};

template <typename T, typename U, typename V, typename W, typename C>
TnpEntries tnp_entries(const ROOT::RVec<T> &pt, const ROOT::RVec<U> &eta, const ROOT::RVec<V> &phi,
                       const ROOT::RVec<W> &mass, const ROOT::RVec<C> &charge, const ROOT::RVec<ROOT::RVecI> &tags,
                       const ROOT::RVecI &probe, const ROOT::RVec<ROOT::RVecI> &denominators,
                       const ROOT::RVec<ROOT::RVecI> &numerators, const ROOT::RVec<ROOT::RVecD> &variables, double low,
                       double high, bool opposite)
{
   TnpEntries out;
   out.variables.resize(variables.size());
   const std::size_t n = pt.size();
   for (std::size_t t = 0; t < tags.size(); ++t)
      for (std::size_t i = 0; i < n; ++i) {
         if (!tags[t][i])
            continue;
         for (std::size_t j = 0; j < n; ++j) {
            if (j == i || !probe[j] || (opposite && charge[i] == charge[j]))
               continue;
            double px = 0., py = 0., pz = 0., e = 0.;
            for (std::size_t k : {i, j}) {
               const double x = pt[k] * std::cos(double(phi[k])), y = pt[k] * std::sin(double(phi[k])),
                            z = pt[k] * std::sinh(double(eta[k]));
               px += x;
               py += y;
               pz += z;
               e += std::sqrt(x * x + y * y + z * z + double(mass[k]) * mass[k]);
            }
            const double m = std::sqrt(std::max(e * e - px * px - py * py - pz * pz, 0.));
            if (m <= low || m >= high)
               continue;
            for (std::size_t f = 0; f < denominators.size(); ++f) {
               if (!denominators[f][j])
                  continue;
               out.tag.push_back(t);
               out.efficiency.push_back(f);
               out.passed.push_back(numerators[f][j] ? 1. : 0.);
               out.mass.push_back(m);
               for (std::size_t v = 0; v < variables.size(); ++v)
                  out.variables[v].push_back(variables[v][j]);
            }
         }
      }
   return out;
}

} // namespace fw

#endif
