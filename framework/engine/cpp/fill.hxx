// The N-dimensional fill action: one booked action fills several histograms for every
// sample of a dataset and every weight variation in one pass (see ARCHITECTURE.md, Filling).
// Compiled into the session library (session.cxx); never part of user expressions.
#ifndef FRAMEWORK_FILL_HXX
#define FRAMEWORK_FILL_HXX

#include "framework.hxx"

#include <ROOT/RDataFrame.hxx>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fw {

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
   int column = 0; // position of the column this axis reads among the fill's value columns

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
      if (!fLocks) {
         for (std::size_t k = 0; k < count; ++k) {
            target[2 * k] += weights[k];
            target[2 * k + 1] += weights[k] * weights[k];
         }
         return;
      }
      std::atomic_flag &lock = fLocks[(cell / fEntries) % kStripes];
      while (lock.test_and_set(std::memory_order_acquire))
         ;
      for (std::size_t k = 0; k < count; ++k) {
         target[2 * k] += weights[k];
         target[2 * k + 1] += weights[k] * weights[k];
      }
      lock.clear(std::memory_order_release);
   }

   // The first entry of a histogram without axes (one cell per sample).
   std::size_t SampleCell(int sample) const { return static_cast<std::size_t>(sample) * fSampleStride; }
   std::size_t Axes() const { return fStrides.size(); }

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

// Result of a fill: the storages of its histograms, shared by the nominal and varied results.
struct FillResult {
   std::vector<std::shared_ptr<Storage>> storages;
   const std::vector<double> &Data(std::size_t h) const { return storages[h]->Data(); }
   int Entries(std::size_t h) const { return static_cast<int>(storages[h]->Entries()); }
   void Release(std::size_t h) { storages[h]->Release(); }
};

// One column of axis values as the fill sees it: a number or a collection of numbers of any
// arithmetic type, read as doubles without a copy (a switch on the element type: no call).
struct ColumnView {
   enum Type : unsigned char { F64, F32, I64, U64, I32, U32, I16, U16, I8, U8, Bool };
   const void *data = nullptr;
   std::size_t size = 1;
   bool collection = false;
   Type type = F64;

   double At(std::size_t i) const
   {
      const std::size_t k = collection ? i : 0;
      switch (type) {
      case F64: return static_cast<const double *>(data)[k];
      case F32: return static_cast<const float *>(data)[k];
      case I64: return static_cast<double>(static_cast<const std::int64_t *>(data)[k]);
      case U64: return static_cast<double>(static_cast<const std::uint64_t *>(data)[k]);
      case I32: return static_cast<const std::int32_t *>(data)[k];
      case U32: return static_cast<const std::uint32_t *>(data)[k];
      case I16: return static_cast<const std::int16_t *>(data)[k];
      case U16: return static_cast<const std::uint16_t *>(data)[k];
      case I8: return static_cast<const std::int8_t *>(data)[k];
      case U8: return static_cast<const std::uint8_t *>(data)[k];
      case Bool: return static_cast<const bool *>(data)[k] ? 1. : 0.;
      }
      return 0.;
   }
};

template <typename T>
constexpr ColumnView::Type TypeOf()
{
   static_assert(std::is_arithmetic_v<T>, "histogram axes read numbers or collections of numbers");
   if constexpr (std::is_same_v<T, bool>)
      return ColumnView::Bool;
   else if constexpr (std::is_floating_point_v<T>) {
      static_assert(sizeof(T) == 4 || sizeof(T) == 8, "histogram axes read float or double numbers");
      return sizeof(T) == 4 ? ColumnView::F32 : ColumnView::F64;
   }
   else if constexpr (sizeof(T) == 8)
      return std::is_signed_v<T> ? ColumnView::I64 : ColumnView::U64;
   else if constexpr (sizeof(T) == 4)
      return std::is_signed_v<T> ? ColumnView::I32 : ColumnView::U32;
   else if constexpr (sizeof(T) == 2)
      return std::is_signed_v<T> ? ColumnView::I16 : ColumnView::U16;
   else
      return std::is_signed_v<T> ? ColumnView::I8 : ColumnView::U8;
}

template <typename T>
ColumnView View(const T &x)
{
   return {&x, 1, false, TypeOf<T>()};
}

template <typename T>
ColumnView View(const ROOT::RVec<T> &x)
{
   return {x.data(), x.size(), true, TypeOf<T>()};
}

// Fills several histograms for all samples of a dataset and all weight variations in one
// pass, from the value columns themselves (typed: no per-event copy into a common form).
// Each axis of a layout names the column it reads (Axis::column). Axes may be numbers or
// collections of equal length (one entry per object); numbers are repeated for every object.
// The copy of this action that RDataFrame makes for a shape variation (MakeNew) fills only
// the nominal weight, into that variation's entry of the same storages.
template <typename... Ts>
class Fill : public ROOT::Detail::RDF::RActionImpl<Fill<Ts...>> {
public:
   using Result_t = FillResult;
   static constexpr std::size_t kMaxAxes = 32;

   Fill(const std::vector<Layout> &layouts, unsigned nslots) : fResult(std::make_shared<FillResult>())
   {
      for (const auto &layout : layouts) {
         if (layout.axes.size() > kMaxAxes)
            throw std::runtime_error("fw::Fill: more than 32 axes in one histogram");
         for (const auto &axis : layout.axes)
            if (axis.column < 0 || static_cast<std::size_t>(axis.column) >= sizeof...(Ts))
               throw std::runtime_error("fw::Fill: an axis reads a column the fill does not have");
         fResult->storages.push_back(std::make_shared<Storage>(layout, nslots));
      }
      fCount = layouts.empty() ? 1 : layouts.front().nweights;
   }
   Fill(const FillResult &shared, std::shared_ptr<FillResult> result, std::size_t first)
      : fResult(result), fFirst(first), fCount(1)
   {
      fResult->storages = shared.storages;
   }
   Fill(Fill &&) = default;
   Fill(const Fill &) = delete;

   std::shared_ptr<FillResult> GetResultPtr() const { return fResult; }
   void Initialize() {}
   void InitTask(TTreeReader *, unsigned int) {}

   void Exec(unsigned int slot, int sample, const ROOT::RVecD &weights, const Ts &...columns)
   {
      const ColumnView views[sizeof...(Ts) + 1] = {View(columns)..., ColumnView{}};
      double values[kMaxAxes];
      for (const auto &pointer : fResult->storages) {
         Storage &storage = *pointer;
         if (storage.Axes() == 0) { // a count per sample (a cutflow row, yields without categories)
            storage.Add(slot, storage.SampleCell(sample), fFirst, weights.data(), fCount);
            continue;
         }
         const auto &axes = storage.GetLayout().axes;
         std::size_t n = 1;
         bool collection = false;
         for (const auto &axis : axes) {
            const ColumnView &view = views[axis.column];
            if (!view.collection)
               continue;
            if (collection && view.size != n)
               throw std::runtime_error("histogram axes are collections of different lengths in one event");
            n = view.size;
            collection = true;
         }
         for (std::size_t i = 0; i < n; ++i) {
            for (std::size_t a = 0; a < axes.size(); ++a)
               values[a] = views[axes[a].column].At(i);
            const long long cell = storage.Cell(sample, values);
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

   Fill MakeNew(void *newResult, std::string_view variation = "nominal")
   {
      auto &result = *static_cast<std::shared_ptr<FillResult> *>(newResult);
      const Layout &layout = fResult->storages.front()->GetLayout();
      const auto it = std::find(layout.variations.begin(), layout.variations.end(), variation);
      if (it == layout.variations.end())
         throw std::runtime_error("fw::Fill: variation '" + std::string(variation) + "' is not in the layout");
      return Fill(*fResult, result, layout.nweights + static_cast<std::size_t>(it - layout.variations.begin()));
   }

private:
   std::shared_ptr<FillResult> fResult;
   std::size_t fFirst = 0;
   std::size_t fCount = 1;
};

// The lines of a text (column names passed from Python one per line).
inline std::vector<std::string> Lines(const char *text)
{
   std::vector<std::string> out;
   std::istringstream in(text);
   for (std::string line; std::getline(in, line);)
      out.push_back(line);
   return out;
}

// One block per histogram: "nsamples nweights nvariations name... naxes", then per axis
// "kind nbins lo hi underflow overflow column nedges edge... nvalues value...".
inline std::vector<Layout> ParseLayouts(const char *text)
{
   std::istringstream in(text);
   std::vector<Layout> layouts;
   std::size_t count = 0;
   in >> count;
   for (std::size_t h = 0; h < count; ++h) {
      Layout layout;
      std::size_t nvariations = 0, naxes = 0;
      in >> layout.nsamples >> layout.nweights >> nvariations;
      layout.variations.resize(nvariations);
      for (auto &v : layout.variations)
         in >> v;
      in >> naxes;
      layout.axes.resize(naxes);
      for (auto &axis : layout.axes) {
         std::size_t nedges = 0, nvalues = 0;
         in >> axis.kind >> axis.nbins >> axis.lo >> axis.hi >> axis.underflow >> axis.overflow >> axis.column >> nedges;
         axis.edges.resize(nedges);
         for (auto &e : axis.edges)
            in >> e;
         in >> nvalues;
         axis.values.resize(nvalues);
         for (auto &v : axis.values)
            in >> v;
      }
      layouts.push_back(std::move(layout));
   }
   if (!in)
      throw std::runtime_error("fw: malformed histogram layouts");
   return layouts;
}

} // namespace fw

#endif
