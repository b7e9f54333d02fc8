// C++ side of the framework: collection views and the N-dimensional fill action.
// Declared once per process, before any graph is built.
#ifndef FRAMEWORK_HXX
#define FRAMEWORK_HXX

#include <ROOT/RDataFrame.hxx>
#include <ROOT/RVec.hxx>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
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

// Position of the next entry in the current file, per processing slot (for --max-events).
// With threads rdfentry_ is not the entry number in the file; but each task starts at a
// known entry of one file (RSampleInfo::EntryRange) and reads its entries in order.
class FilePosition {
public:
   explicit FilePosition(unsigned nslots) : fNext(nslots, 0) {}
   void StartTask(unsigned slot, long long first) { fNext[slot] = first; }
   long long Next(unsigned slot) { return fNext[slot]++; }

private:
   std::vector<long long> fNext;
};

// ---------------------------------------------------------------- filling

// One histogram axis as the fill action sees it. Index() returns the position of the
// value in boost-histogram's flow-inclusive layout (underflow first), or -1 to drop it.
struct Axis {
   enum Kind : int { Regular = 0, Variable = 1, Integer = 2, Category = 3, Boolean = 4 };
   int kind = Regular;
   int nbins = 0;
   double lo = 0., hi = 1.;
   std::vector<double> edges;
   std::vector<long long> values;
   bool underflow = true;
   bool overflow = true;

   long Extent() const { return nbins + (underflow ? 1 : 0) + (overflow ? 1 : 0); }

   long Index(double x) const
   {
      long i = 0; // bin index without flow; -1 underflow, nbins overflow
      switch (kind) {
      case Regular: {
         const double z = (x - lo) / (hi - lo);
         if (z < 1.)
            i = z >= 0. ? static_cast<long>(z * nbins) : -1;
         else
            i = nbins; // also NaN, as boost-histogram does
         break;
      }
      case Variable:
         i = static_cast<long>(std::upper_bound(edges.begin(), edges.end(), x) - edges.begin()) - 1;
         if (i >= nbins)
            i = nbins;
         break;
      case Integer: {
         if (std::isnan(x)) {
            i = nbins;
            break;
         }
         const double v = std::floor(x) - lo;
         i = v < 0. ? -1 : (v >= nbins ? nbins : static_cast<long>(v));
         break;
      }
      case Category: {
         const auto v = static_cast<long long>(x);
         const auto it = std::find(values.begin(), values.end(), v);
         i = it == values.end() ? nbins : static_cast<long>(it - values.begin());
         break;
      }
      case Boolean: i = x != 0. ? 1 : 0; break;
      }
      if (i < 0)
         return underflow ? 0 : -1;
      if (i >= nbins)
         return overflow ? nbins + (underflow ? 1 : 0) : -1;
      return i + (underflow ? 1 : 0);
   }
};

// Shape of one booked histogram: a leading sample dimension, the axes, and a last
// dimension with one entry per weight variation.
struct Layout {
   int nsamples = 1;
   int nweights = 1;
   std::vector<Axis> axes;
};

// Result of a fill: interleaved (sum of weights, sum of squared weights), C order over
// (sample, axes..., weight variation): the memory layout of boost-histogram's Weight storage.
struct HistBuffer {
   std::vector<double> data;
   int nweights = 1;
   void Release() { std::vector<double>().swap(data); }
};

template <typename T>
struct IsRVec : std::false_type {};
template <typename T>
struct IsRVec<ROOT::RVec<T>> : std::true_type {};

template <typename T>
double ValueAt(const T &x, std::size_t) { return static_cast<double>(x); }
template <typename T>
double ValueAt(const ROOT::RVec<T> &x, std::size_t i) { return static_cast<double>(x[i]); }

// The axis values of one event as one flat vector: entry after entry, axis after axis.
// Axes may be scalars or collections of equal length (one entry per object); scalars
// are repeated for every object. Packing lets one compiled fill action serve every
// histogram whatever its column types (each distinct action type costs ~0.4 s of JIT).
template <typename... Ts>
ROOT::RVecD pack(const Ts &...xs)
{
   std::size_t n = 1;
   bool haveVector = false;
   auto checkSize = [&](auto const &x) {
      if constexpr (IsRVec<std::decay_t<decltype(x)>>::value) {
         if (!haveVector) {
            n = x.size();
            haveVector = true;
         } else if (x.size() != n) {
            throw std::runtime_error("histogram axes hold collections of different lengths in one event");
         }
      }
   };
   (checkSize(xs), ...);
   ROOT::RVecD out(n * sizeof...(Ts));
   std::size_t k = 0;
   for (std::size_t i = 0; i < n; ++i)
      ((out[k++] = ValueAt(xs, i)), ...);
   return out;
}

// Fills one histogram for all samples of a dataset and all weight variations in one
// pass, from packed axis values (see pack). Under a Vary'd (shape) variation only the
// nominal weight is filled: MakeNew builds an action with a single weight entry.
//
// Small histograms get one buffer per thread, summed at the end. Large ones (above
// kSharedBytes) are filled in place in the result, each cell guarded by one of
// kStripes spin locks, so memory does not grow with the thread count.
class NDFill : public ROOT::Detail::RDF::RActionImpl<NDFill> {
public:
   using Result_t = HistBuffer;
   static constexpr std::size_t kSharedBytes = 16u << 20;
   static constexpr std::size_t kStripes = 1024;

   NDFill(const Layout &layout, unsigned nslots, bool nominalOnly = false,
          std::shared_ptr<HistBuffer> result = std::make_shared<HistBuffer>())
      : fLayout(std::make_shared<const Layout>(layout)), fResult(result), fSlots(nslots)
   {
      fNWeights = nominalOnly ? 1 : layout.nweights;
      std::size_t size = fNWeights;
      fStrides.resize(layout.axes.size());
      for (std::size_t a = layout.axes.size(); a-- > 0;) {
         fStrides[a] = size;
         size *= layout.axes[a].Extent();
      }
      fSampleStride = size;
      fSize = size * layout.nsamples;
      fResult->nweights = fNWeights;
      if (nslots > 1 && 2 * fSize * sizeof(double) > kSharedBytes) {
         fLocks.reset(new std::atomic_flag[kStripes]);
         for (std::size_t i = 0; i < kStripes; ++i)
            fLocks[i].clear();
      }
   }
   NDFill(NDFill &&) = default;
   NDFill(const NDFill &) = delete;

   std::shared_ptr<HistBuffer> GetResultPtr() const { return fResult; }
   void Initialize()
   {
      if (fLocks)
         fResult->data.assign(2 * fSize, 0.);
   }
   void InitTask(TTreeReader *, unsigned int) {}

   void Exec(unsigned int slot, int sample, const ROOT::RVecD &weights, const ROOT::RVecD &values)
   {
      const auto &axes = fLayout->axes;
      const std::size_t naxes = axes.size();
      const std::size_t n = naxes == 0 ? 1 : values.size() / naxes;
      double *base = nullptr;
      if (fLocks) {
         base = fResult->data.data();
      } else {
         auto &buf = fSlots[slot];
         if (buf.empty())
            buf.assign(2 * fSize, 0.);
         base = buf.data();
      }
      for (std::size_t i = 0; i < n; ++i) {
         std::size_t offset = static_cast<std::size_t>(sample) * fSampleStride;
         bool inside = true;
         for (std::size_t a = 0; a < naxes && inside; ++a) {
            const long j = axes[a].Index(values[i * naxes + a]);
            inside = j >= 0;
            if (inside)
               offset += static_cast<std::size_t>(j) * fStrides[a];
         }
         if (!inside)
            continue;
         double *cell = base + 2 * offset;
         std::atomic_flag *lock = fLocks ? &fLocks[(offset / fNWeights) % kStripes] : nullptr;
         if (lock)
            while (lock->test_and_set(std::memory_order_acquire))
               ;
         for (int k = 0; k < fNWeights; ++k) {
            const double w = weights[k];
            cell[2 * k] += w;
            cell[2 * k + 1] += w * w;
         }
         if (lock)
            lock->clear(std::memory_order_release);
      }
   }

   void Finalize()
   {
      if (fLocks)
         return;
      fResult->data.assign(2 * fSize, 0.);
      for (auto &buf : fSlots) {
         if (buf.empty())
            continue;
         for (std::size_t i = 0; i < buf.size(); ++i)
            fResult->data[i] += buf[i];
         std::vector<double>().swap(buf);
      }
   }

   std::string GetActionName() const { return "Histogram"; }

   NDFill MakeNew(void *newResult, std::string_view /*variation*/ = "nominal")
   {
      auto &result = *static_cast<std::shared_ptr<HistBuffer> *>(newResult);
      return NDFill(*fLayout, fSlots.size(), true, result);
   }

private:
   std::shared_ptr<const Layout> fLayout;
   int fNWeights = 1;
   std::shared_ptr<HistBuffer> fResult;
   std::vector<std::vector<double>> fSlots;
   std::unique_ptr<std::atomic_flag[]> fLocks;
   std::vector<std::size_t> fStrides;
   std::size_t fSampleStride = 0;
   std::size_t fSize = 0;
};

// Columns: sample index (int), weight vector (RVecD), packed axis values (RVecD).
inline ROOT::RDF::RResultPtr<HistBuffer>
book_fill(ROOT::RDF::RNode node, const Layout &layout, const std::vector<std::string> &columns)
{
   return node.Book<int, ROOT::RVecD, ROOT::RVecD>(NDFill(layout, node.GetNSlots()), columns);
}

// VariationsFor compiled once here: through PyROOT it is re-instantiated on every call.
inline ROOT::RDF::Experimental::RResultMap<HistBuffer> variations_for(ROOT::RDF::RResultPtr<HistBuffer> result)
{
   return ROOT::RDF::Experimental::VariationsFor(result);
}

} // namespace fw

#endif
