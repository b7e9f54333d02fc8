// C++ helpers that configuration expressions call: collection views, weight arrays, casts
// for varied columns, axis-value packing; and the certified-luminosity lookup of lumi masks. Included by the interpreter
// before expressions are compiled and by every compiled step (framework/engine/compiled.py).
#ifndef FRAMEWORK_HXX
#define FRAMEWORK_HXX

#include <ROOT/RVec.hxx>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace fw {

// ---------------------------------------------------------------- columns

// Indices of the objects passing `mask`, in their original order.
template <typename M>
ROOT::RVec<int> collection_indices(const ROOT::RVec<M> &mask)
{
   ROOT::RVec<int> idx;
   idx.reserve(mask.size());
   for (std::size_t i = 0; i < mask.size(); ++i)
      if (mask[i])
         idx.push_back(static_cast<int>(i));
   return idx;
}

// Indices of the objects passing `mask`, ordered by `key` (stable, so ties keep input order).
template <typename M, typename K>
ROOT::RVec<int> collection_indices(const ROOT::RVec<M> &mask, const ROOT::RVec<K> &key, bool descending)
{
   auto idx = collection_indices(mask);
   std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) {
      return descending ? key[a] > key[b] : key[a] < key[b];
   });
   return idx;
}

// Element `i` of an array of weight factors, with an error naming the systematic when absent.
template <typename T>
double at(const ROOT::RVec<T> &array, std::size_t i, const char *systematic)
{
   if (i >= array.size())
      throw std::out_of_range(std::string("systematic '") + systematic + "': index " + std::to_string(i) +
                              " is out of range for an array of " + std::to_string(array.size()) + " entries");
   return static_cast<double>(array[i]);
}

// An element of a column array, checked: an index out of range is an error naming where it was
// written (`site`, see framework/config/expressions.py: checked_indexing), the dataset and the entry
// (rdfentry_, from which the file and sample are found), not a read of whatever lies past the array. An
// array index (a mask or indices) selects as usual.
[[noreturn]] inline void
index_error(int site, long long index, std::size_t size, unsigned long long entry, int dataset)
{
   throw std::out_of_range("fw::item site " + std::to_string(site) + ": index " + std::to_string(index) +
                           " is out of range for an array of " + std::to_string(size) + " entries, dataset " +
                           std::to_string(dataset) + " entry " + std::to_string(entry));
}

template <typename T, typename I, std::enable_if_t<std::is_arithmetic_v<I>, int> = 0>
const T &item(const ROOT::RVec<T> &array, I index, int site, unsigned long long entry, int dataset)
{
   const auto i = static_cast<long long>(index);
   if (i < 0 || static_cast<std::size_t>(i) >= array.size())
      index_error(site, i, array.size(), entry, dataset);
   return array[static_cast<std::size_t>(i)];
}

template <typename T, typename I>
auto item(const ROOT::RVec<T> &array, const ROOT::RVec<I> &selection, int, unsigned long long, int)
{
   return array[selection];
}

// Varied over nominal factor, 0 when the nominal is 0 (a weight variation given as a scale factor).
inline double ratio(double varied, double nominal) { return nominal != 0. ? varied / nominal : 0.; }

// Convert a value to the exact type of the column it varies (Vary requires it).
template <typename T>
struct Cast {
   template <typename U>
   static T from(const U &x) { return static_cast<T>(x); }
};
template <typename T>
struct Cast<ROOT::RVec<T>> {
   template <typename U>
   static ROOT::RVec<T> from(const ROOT::RVec<U> &x) { return ROOT::RVec<T>(x.begin(), x.end()); }
};
template <typename T, typename U>
T cast(const U &x) { return Cast<T>::from(x); }

// ---------------------------------------------------------------- axis values

template <typename T>
struct IsRVec : std::false_type {};
template <typename T>
struct IsRVec<ROOT::RVec<T>> : std::true_type {};

template <typename T>
double ValueAt(const T &x, std::size_t) { return static_cast<double>(x); }
template <typename T>
double ValueAt(const ROOT::RVec<T> &x, std::size_t i) { return static_cast<double>(x[i]); }

// The axis values of one event for one histogram, as one flat vector: entry after entry,
// axis after axis. Axes may be scalars or collections of equal length (one entry per
// object); scalars are repeated for every object.
// The common length of the collections among `xs` (1 when all are scalars); `what` names
// the values in the error thrown when collections of different lengths meet.
template <typename... Ts>
std::size_t common_length(const char *what, const Ts &...xs)
{
   std::size_t n = 1;
   bool haveVector = false;
   auto checkSize = [&](auto const &x) {
      if constexpr (IsRVec<std::decay_t<decltype(x)>>::value) {
         if (!haveVector) {
            n = x.size();
            haveVector = true;
         } else if (x.size() != n) {
            throw std::runtime_error(std::string(what) + " are collections of different lengths in one event");
         }
      }
   };
   (checkSize(xs), ...);
   return n;
}

template <typename... Ts>
ROOT::RVecD pack(const Ts &...xs)
{
   const std::size_t n = common_length("histogram axes", xs...);
   ROOT::RVecD out(n * sizeof...(Ts));
   std::size_t k = 0;
   for (std::size_t i = 0; i < n; ++i)
      ((out[k++] = ValueAt(xs, i)), ...);
   return out;
}

// The axis values of every histogram of one fill, one segment per histogram. One column
// and one action for many histograms: RDataFrame's cost per node and per variation is
// paid once, and one compiled action serves every histogram whatever its column types.
struct Packed {
   ROOT::RVecD values;
   ROOT::RVec<std::size_t> offsets; // segment h is [offsets[h], offsets[h+1])
};

template <typename... Ps>
Packed pack_all(const Ps &...packs)
{
   Packed out;
   out.offsets.reserve(sizeof...(Ps) + 1);
   out.offsets.push_back(0);
   ((out.offsets.push_back(out.offsets.back() + packs.size())), ...);
   out.values.reserve(out.offsets.back());
   ((out.values.insert(out.values.end(), packs.begin(), packs.end())), ...);
   return out;
}

// ---------------------------------------------------------------- certified luminosity

// The luminosity sections a certification ("golden") JSON certifies, as (run, first, last) ranges with
// both ends included, sorted by run then first section and disjoint (framework/config/lumimask.py checks
// the JSON; checked again here). Built once per mask when the graph is built, shared by every thread; a
// lookup is one binary search over the ranges, ordered by (run, first section).
class LumiMask {
public:
   // `flat`: run, first and last section of each range, range after range.
   LumiMask(const unsigned *flat, std::size_t size)
   {
      if (size % 3 != 0)
         throw std::invalid_argument("fw::LumiMask: the ranges are not (run, first, last) triples");
      fRanges.reserve(size / 3);
      for (std::size_t i = 0; i < size; i += 3) {
         const Range r{flat[i], flat[i + 1], flat[i + 2]};
         const bool ordered = fRanges.empty() || fRanges.back().run < r.run ||
                              (fRanges.back().run == r.run && fRanges.back().last < r.first);
         if (r.first > r.last || !ordered)
            throw std::invalid_argument("fw::LumiMask: a range of run " + std::to_string(r.run) +
                                        " is reversed, overlapping or out of order");
         fRanges.push_back(r);
      }
   }

   bool Contains(unsigned long long run, unsigned long long lumi) const
   {
      // the first range starting after (run, lumi); the one before it is the only one that can hold it
      const auto after = std::upper_bound(fRanges.begin(), fRanges.end(), std::make_pair(run, lumi),
                                          [](const std::pair<unsigned long long, unsigned long long> &key,
                                             const Range &r) {
                                             return key.first < r.run || (key.first == r.run && key.second < r.first);
                                          });
      if (after == fRanges.begin())
         return false;
      const Range &r = *(after - 1);
      return r.run == run && lumi <= r.last;
   }

   std::size_t Size() const { return fRanges.size(); }

private:
   struct Range {
      unsigned long long run, first, last;
   };
   std::vector<Range> fRanges;
};

// The masks of a dataset's samples: an event's sample (its position in the dataset) picks its mask;
// a sample without one (nullptr) keeps every event.
class SampleLumiMasks {
public:
   explicit SampleLumiMasks(std::vector<std::shared_ptr<const LumiMask>> bySample) : fBySample(std::move(bySample)) {}

   bool Pass(int sample, unsigned long long run, unsigned long long lumi) const
   {
      if (sample < 0 || static_cast<std::size_t>(sample) >= fBySample.size())
         throw std::out_of_range("fw::SampleLumiMasks: no sample " + std::to_string(sample));
      const auto &mask = fBySample[static_cast<std::size_t>(sample)];
      return !mask || mask->Contains(run, lumi);
   }

private:
   std::vector<std::shared_ptr<const LumiMask>> fBySample;
};

} // namespace fw

#endif
