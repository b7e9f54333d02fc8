// correctionlib in the event loop: scale factors (one per event, or the product of per-object
// factors when some inputs are collections) and shape variations of a column (per object).
// A correction is a correction::Correction or a correction::CompoundCorrection. Needs
// correctionlib's headers (correctionlib.register_pyroot_binding()).
#ifndef FRAMEWORK_CORRECTIONS_HXX
#define FRAMEWORK_CORRECTIONS_HXX

#include "correction.h"

#include <ROOT/RVec.hxx>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace fw {

// One input value (of object i for a collection) as the correction declares it: 's' string,
// 'i' int, 'r' real.
template <typename T>
correction::Variable::Type CorrectionInput(const T &x, std::size_t, char type)
{
   if constexpr (std::is_convertible_v<const T &, std::string>) {
      return std::string(x);
   } else {
      if (type == 'i')
         return static_cast<std::int64_t>(x);
      return static_cast<double>(x);
   }
}
template <typename T>
correction::Variable::Type CorrectionInput(const ROOT::RVec<T> &x, std::size_t i, char type)
{
   return CorrectionInput(T(x[i]), 0, type);
}

// The correction evaluated on the inputs of object i; `args` is reused between calls.
template <typename C, typename... Ts>
double correction_at(const C &c, const char *types, std::vector<correction::Variable::Type> &args, std::size_t i,
                     const Ts &...xs)
{
   args.clear();
   std::size_t k = 0;
   (args.push_back(CorrectionInput(xs, i, types[k++])), ...);
   return c.evaluate(args);
}

// Product over objects (or one event-level value) of the correction; `types` has one letter per input.
template <typename C, typename... Ts>
double correction_product(const C &c, const char *types, const Ts &...xs)
{
   const std::size_t n = common_length("correction inputs", xs...);
   double product = 1.;
   std::vector<correction::Variable::Type> args;
   args.reserve(sizeof...(Ts));
   for (std::size_t i = 0; i < n; ++i)
      product *= correction_at(c, types, args, i, xs...);
   return product;
}

// The factor a shape variation multiplies a value by: 1 + sign x value for an uncertainty (sign +1
// up, -1 down), the value itself for a scale factor (sign 0).
inline double correction_factor(int sign, double value)
{
   return sign == 0 ? value : 1. + sign * value;
}

template <typename... Ts>
void check_correction_lengths(std::size_t n, const Ts &...xs)
{
   if constexpr ((IsRVec<std::decay_t<Ts>>::value || ...)) {
      if (common_length("correction inputs", xs...) != n)
         throw std::runtime_error("the inputs of a correction and the column it varies are collections of "
                                  "different lengths in one event");
   }
}

// A column varied by a correction evaluated per object (inputs that are scalars are the event's).
template <typename T, typename C, typename... Ts>
ROOT::RVec<T> correction_vary(const ROOT::RVec<T> &column, int sign, const C &c, const char *types, const Ts &...xs)
{
   const std::size_t n = column.size();
   check_correction_lengths(n, xs...);
   ROOT::RVec<T> out(n);
   std::vector<correction::Variable::Type> args;
   args.reserve(sizeof...(Ts));
   for (std::size_t i = 0; i < n; ++i) {
      const double factor = correction_factor(sign, correction_at(c, types, args, i, xs...));
      out[i] = static_cast<T>(static_cast<double>(column[i]) * factor);
   }
   return out;
}

// A per-event column varied by a correction of per-event inputs.
template <typename T, typename C, typename... Ts>
T correction_vary(const T &column, int sign, const C &c, const char *types, const Ts &...xs)
{
   check_correction_lengths(1, xs...);
   std::vector<correction::Variable::Type> args;
   args.reserve(sizeof...(Ts));
   const double factor = correction_factor(sign, correction_at(c, types, args, 0, xs...));
   return static_cast<T>(static_cast<double>(column) * factor);
}

} // namespace fw

#endif
