// C++ side of the framework: collection views and the N-dimensional fill action.
// Declared once per process, before any graph is built.
#ifndef FRAMEWORK_HXX
#define FRAMEWORK_HXX

#include <ROOT/RDataFrame.hxx>
#include <ROOT/RVec.hxx>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
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
// dimension with one entry per weight variation, then one per shape variation
// (named as RDataFrame names them, "jes:up").
struct Layout {
   int nsamples = 1;
   int nweights = 1;
   std::vector<std::string> variations;
   std::vector<Axis> axes;
};

// The cells of one histogram, shared by its nominal fill and the fills of its shape
// variations: interleaved (sum of weights, sum of squared weights), C order over
// (sample, axes..., entry), the memory layout of boost-histogram's Weight storage. All
// entries of a cell are adjacent, so the variations of one event hit the same cache lines.
//
// Small histograms get one buffer per thread, summed at the end. Large ones (above
// kSharedBytes) are filled in place, each cell guarded by one of kStripes spin locks, so
// memory does not grow with the thread count.
class Storage {
public:
   static constexpr std::size_t kSharedBytes = 4u << 20;
   static constexpr std::size_t kStripes = 4096;

   Storage(const Layout &layout, unsigned nslots) : fLayout(layout), fSlots(nslots)
   {
      fEntries = layout.nweights + layout.variations.size();
      std::size_t size = fEntries;
      fStrides.resize(layout.axes.size());
      for (std::size_t a = layout.axes.size(); a-- > 0;) {
         fStrides[a] = size;
         size *= layout.axes[a].Extent();
      }
      fSampleStride = size;
      fSize = size * layout.nsamples;
      if (nslots > 1 && 2 * fSize * sizeof(double) > kSharedBytes) {
         fLocks.reset(new std::atomic_flag[kStripes]);
         for (std::size_t i = 0; i < kStripes; ++i)
            fLocks[i].clear();
         fMerged.assign(2 * fSize, 0.);
      }
   }

   const Layout &GetLayout() const { return fLayout; }

   // Index of the first entry of the cell of `values[i*naxes ...]`, or -1 when outside.
   long long Cell(int sample, const double *values) const
   {
      std::size_t offset = static_cast<std::size_t>(sample) * fSampleStride;
      for (std::size_t a = 0; a < fStrides.size(); ++a) {
         const long j = fLayout.axes[a].Index(values[a]);
         if (j < 0)
            return -1;
         offset += static_cast<std::size_t>(j) * fStrides[a];
      }
      return static_cast<long long>(offset);
   }

   // Add weights[0..count) to entries first..first+count of `cell`.
   void Add(unsigned slot, std::size_t cell, std::size_t first, const double *weights, std::size_t count)
   {
      double *target = nullptr;
      if (fLocks) {
         target = fMerged.data() + 2 * (cell + first);
      } else {
         auto &buf = fSlots[slot];
         if (buf.empty())
            buf.assign(2 * fSize, 0.);
         target = buf.data() + 2 * (cell + first);
      }
      std::atomic_flag *lock = fLocks ? &fLocks[(cell / fEntries) % kStripes] : nullptr;
      if (lock)
         while (lock->test_and_set(std::memory_order_acquire))
            ;
      for (std::size_t k = 0; k < count; ++k) {
         target[2 * k] += weights[k];
         target[2 * k + 1] += weights[k] * weights[k];
      }
      if (lock)
         lock->clear(std::memory_order_release);
   }

   // Sum the per-thread buffers (once, whichever fill finishes first; all have stopped by then).
   void Merge()
   {
      if (fMergedDone)
         return;
      fMergedDone = true;
      if (fLocks)
         return;
      for (auto &buf : fSlots) {
         if (buf.empty())
            continue;
         if (fMerged.empty()) {
            fMerged.swap(buf);
            continue;
         }
         for (std::size_t i = 0; i < buf.size(); ++i)
            fMerged[i] += buf[i];
         std::vector<double>().swap(buf);
      }
      if (fMerged.empty())
         fMerged.assign(2 * fSize, 0.);
   }

   const std::vector<double> &Data() const { return fMerged; }
   std::size_t Entries() const { return fEntries; }
   void Release() { std::vector<double>().swap(fMerged); }

private:
   Layout fLayout;
   std::size_t fEntries = 1;
   std::vector<std::size_t> fStrides;
   std::size_t fSampleStride = 0;
   std::size_t fSize = 0;
   std::vector<std::vector<double>> fSlots;
   std::unique_ptr<std::atomic_flag[]> fLocks;
   std::vector<double> fMerged;
   bool fMergedDone = false;
};

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

// Result of a fill: the storages of its histograms, shared by the nominal and varied results.
struct FillResult {
   std::vector<std::shared_ptr<Storage>> storages;
   const std::vector<double> &Data(std::size_t h) const { return storages[h]->Data(); }
   int Entries(std::size_t h) const { return static_cast<int>(storages[h]->Entries()); }
   void Release(std::size_t h) { storages[h]->Release(); }
};

// Fills several histograms for all samples of a dataset and all weight variations in one
// pass. The copy of this action that RDataFrame makes for a shape variation (MakeNew)
// fills only the nominal weight, into that variation's entry of the same storages.
class MultiFill : public ROOT::Detail::RDF::RActionImpl<MultiFill> {
public:
   using Result_t = FillResult;

   MultiFill(const std::vector<Layout> &layouts, unsigned nslots) : fResult(std::make_shared<FillResult>())
   {
      for (const auto &layout : layouts)
         fResult->storages.push_back(std::make_shared<Storage>(layout, nslots));
      fCount = layouts.empty() ? 1 : layouts.front().nweights;
   }
   MultiFill(const FillResult &shared, std::shared_ptr<FillResult> result, std::size_t first)
      : fResult(result), fFirst(first), fCount(1)
   {
      fResult->storages = shared.storages;
   }
   MultiFill(MultiFill &&) = default;
   MultiFill(const MultiFill &) = delete;

   std::shared_ptr<FillResult> GetResultPtr() const { return fResult; }
   void Initialize() {}
   void InitTask(TTreeReader *, unsigned int) {}

   void Exec(unsigned int slot, int sample, const ROOT::RVecD &weights, const Packed &packed)
   {
      const auto &storages = fResult->storages;
      for (std::size_t h = 0; h < storages.size(); ++h) {
         Storage &storage = *storages[h];
         const std::size_t naxes = storage.GetLayout().axes.size();
         const std::size_t begin = packed.offsets[h], end = packed.offsets[h + 1];
         const std::size_t n = naxes == 0 ? 1 : (end - begin) / naxes;
         for (std::size_t i = 0; i < n; ++i) {
            const long long cell = storage.Cell(sample, packed.values.data() + begin + i * naxes);
            if (cell >= 0)
               storage.Add(slot, static_cast<std::size_t>(cell), fFirst, weights.data(), fCount);
         }
      }
   }

   void Finalize()
   {
      for (auto &storage : fResult->storages)
         storage->Merge();
   }

   std::string GetActionName() const { return "Histograms"; }

   MultiFill MakeNew(void *newResult, std::string_view variation = "nominal")
   {
      auto &result = *static_cast<std::shared_ptr<FillResult> *>(newResult);
      const Layout &layout = fResult->storages.front()->GetLayout();
      const auto it = std::find(layout.variations.begin(), layout.variations.end(), variation);
      if (it == layout.variations.end())
         throw std::runtime_error("fw::MultiFill: variation '" + std::string(variation) + "' is not in the layout");
      return MultiFill(*fResult, result, layout.nweights + static_cast<std::size_t>(it - layout.variations.begin()));
   }

private:
   std::shared_ptr<FillResult> fResult;
   std::size_t fFirst = 0;
   std::size_t fCount = 1;
};

// Columns: sample index (int), weight vector (RVecD), packed axis values (Packed).
inline ROOT::RDF::RResultPtr<FillResult>
book_fill(ROOT::RDF::RNode node, const std::vector<Layout> &layouts, const std::vector<std::string> &columns)
{
   return node.Book<int, ROOT::RVecD, Packed>(MultiFill(layouts, node.GetNSlots()), columns);
}

// ---- tag and probe

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

// ---- progress for notebooks: the event count, written to a small JSON file as the loop runs

struct Progress {
   std::atomic<unsigned long long> events{0};
   unsigned long long total = 0;
   std::string path;
   std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
   std::atomic<long long> lastWriteMs{-1000};
};

inline void write_progress(Progress &p, bool force)
{
   const long long ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - p.start).count();
   long long last = p.lastWriteMs.load();
   if (!force && (ms - last < 250 || !p.lastWriteMs.compare_exchange_strong(last, ms)))
      return; // at most four writes a second, by one thread
   const std::string tmp = p.path + ".tmp";
   if (FILE *f = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(f, "{\"stage\": \"event loop\", \"events\": %llu, \"total\": %llu, \"seconds\": %.3f}\n",
                   p.events.load(), p.total, ms / 1000.);
      std::fclose(f);
      std::rename(tmp.c_str(), p.path.c_str());
   }
}

// Count every `every` events of `count`'s loop into `progress`.
inline void watch_progress(ROOT::RDF::RResultPtr<ULong64_t> count, std::shared_ptr<Progress> progress,
                           unsigned long long every)
{
   count.OnPartialResultSlot(every, [progress, every](unsigned int, ULong64_t &) {
      progress->events += every;
      write_progress(*progress, false);
   });
}

inline std::shared_ptr<Progress> make_progress(const std::string &path, unsigned long long total)
{
   auto p = std::make_shared<Progress>();
   p->path = path;
   p->total = total;
   return p;
}

// VariationsFor compiled once here: through PyROOT it is re-instantiated on every call.
inline ROOT::RDF::Experimental::RResultMap<FillResult> variations_for(ROOT::RDF::RResultPtr<FillResult> result)
{
   return ROOT::RDF::Experimental::VariationsFor(result);
}

} // namespace fw

#endif
