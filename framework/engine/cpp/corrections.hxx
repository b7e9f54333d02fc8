// correctionlib scale factors in the event loop: one factor per event, or the product of
// per-object factors when some inputs are collections. Needs correctionlib's headers
// (correctionlib.register_pyroot_binding()).
#ifndef FRAMEWORK_CORRECTIONS_HXX
#define FRAMEWORK_CORRECTIONS_HXX

#include "correction.h"

#include <ROOT/RVec.hxx>

#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace fw {

template <typename T>
correction::Variable::Type CorrectionInput(const T &x, std::size_t)
{
   if constexpr (std::is_integral_v<T>)
      return static_cast<int>(x);
   else
      return static_cast<double>(x);
}
template <typename T>
correction::Variable::Type CorrectionInput(const ROOT::RVec<T> &x, std::size_t i)
{
   return CorrectionInput(T(x[i]), 0);
}

// Product over objects (or one event-level value) of the correction evaluated with `key`
// at input position keyPos (-1: the correction takes no key) and the other inputs in order.
template <typename... Ts>
double correction_product(const correction::Correction &c, int keyPos, const std::string &key, const Ts &...xs)
{
   const std::size_t n = common_length("correction inputs", xs...);
   double product = 1.;
   std::vector<correction::Variable::Type> args;
   args.reserve(sizeof...(Ts) + 1);
   for (std::size_t i = 0; i < n; ++i) {
      args.clear();
      (args.push_back(CorrectionInput(xs, i)), ...);
      if (keyPos >= 0)
         args.insert(args.begin() + keyPos, key);
      product *= c.evaluate(args);
   }
   return product;
}

} // namespace fw

#endif
