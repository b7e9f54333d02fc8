// One run's RDataFrame graphs behind a C interface: datasets, graph steps (JIT-compiled
// from expressions or compiled ahead into step libraries), fill actions, the event loop
// and its buffers. Python drives it with ctypes (framework/engine/session.py), so building a graph
// asks nothing of the interpreter except for the expressions it must JIT-compile.
//
// Compiled once into a library cached per ROOT version, compiler and sources
// (framework/engine/compiled.py), with FW_SESSION_ALL defined. Until that library exists the
// interpreter compiles this file part by part, each when a run first needs it (defining
// FW_SESSION_<PART> and including the file again): every part costs the interpreter
// about a second of template instantiation.
#ifndef FW_SESSION_CORE
#define FW_SESSION_CORE
#include "fill.hxx"

#include <ROOT/RDF/RResultMap.hxx>
#include <ROOT/RDF/Utils.hxx>
#include <ROOT/RDFHelpers.hxx>
#include <ROOT/RDataFrame.hxx>
#include <ROOT/RLogger.hxx>
#include <TError.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

namespace fw {

// RInterfaceBase::GetLoopManager is protected; a member pointer named through a derived class
// reaches it. Used to compile a graph's pending JIT code before the loop, not inside it.
struct LoopManagerOf : ROOT::RDF::RNode {
   static ROOT::Detail::RDF::RLoopManager *Get(const ROOT::RDF::RNode &node)
   {
      return (node.*(&LoopManagerOf::GetLoopManager))();
   }
};

// Reads RDataFrame's own log of its event loops ("Finished event loop number 0 (0.1s CPU,
// 0.2s elapsed)"): the loop's time without the JIT and the start before it. Its other
// informational messages are not shown.
class LoopLog : public ROOT::RLogHandler {
public:
   bool Emit(const ROOT::RLogEntry &entry) override
   {
      if (entry.fChannel != &ROOT::Detail::RDF::RDFLogChannel() || !entry.IsInfo())
         return true;
      const auto at = entry.fMessage.find("CPU, ");
      if (entry.fMessage.find("Finished event loop") != std::string::npos && at != std::string::npos) {
         const double seconds = std::atof(entry.fMessage.c_str() + at + 5);
         std::lock_guard<std::mutex> guard(fLock);
         fElapsed = std::max(fElapsed, seconds); // RunGraphs runs the loops side by side
      }
      return false;
   }
   double Elapsed() const { return fElapsed; }

private:
   std::mutex fLock;
   double fElapsed = 0.;
};

// Entries read from each file of a dataset, counted by the loop itself, per slot: compared after the
// loop with the entries each file had when the run began, so that a file read short (its server gone)
// is an error rather than histograms quietly missing events; after a failed loop, the files it had
// not finished. Read through `Counts()`, which outlives the loop however it ended. Each event costs
// one more action (about 5 ns with 2 threads).
class FileEntries : public ROOT::Detail::RDF::RActionImpl<FileEntries> {
public:
   using Result_t = int; // nothing: the counts are read through Counts()
   using PerSlot = std::vector<std::vector<ULong64_t>>;
   // `positions`: of each file in the dataset, by its name in RSampleInfo
   FileEntries(unsigned nslots, std::unordered_map<std::string, int> positions)
      // each slot's counts padded by a cache line: threads do not share one
      : fCounts(std::make_shared<PerSlot>(nslots, std::vector<ULong64_t>(positions.size() + 8, 0))),
        fCurrent(nslots, nullptr),
        fPositions(std::move(positions))
   {
   }
   FileEntries(FileEntries &&) = default;
   FileEntries(const FileEntries &) = delete;
   std::shared_ptr<Result_t> GetResultPtr() const { return fResult; }
   std::shared_ptr<PerSlot> Counts() const { return fCounts; }
   void Initialize() {}
   void InitTask(TTreeReader *, unsigned) {}
   // called as each slot starts on a file
   ROOT::RDF::SampleCallback_t GetSampleCallback() final
   {
      return [this](unsigned slot, const ROOT::RDF::RSampleInfo &info) {
         const auto it = fPositions.find(info.AsString());
         if (it == fPositions.end())
            throw std::runtime_error("file not in the plan: " + info.AsString());
         fCurrent[slot] = &(*fCounts)[slot][it->second];
      };
   }
   void Exec(unsigned slot) { ++*fCurrent[slot]; }
   void Finalize() {}
   std::string GetActionName() const { return "FileEntries"; }

private:
   std::shared_ptr<PerSlot> fCounts;
   std::vector<ULong64_t *> fCurrent; // per slot, the count of the file it reads
   std::unordered_map<std::string, int> fPositions;
   std::shared_ptr<Result_t> fResult = std::make_shared<Result_t>(0);
};

struct DatasetEntries {
   ROOT::RDF::RResultPtr<int> action; // keeps the counting action booked
   std::shared_ptr<FileEntries::PerSlot> counts; // none: not counted
   std::size_t nfiles;
};

// ROOT's error messages while a loop runs ("TBranch::GetBasket: File: root://... at byte ..."), kept
// to name the file a failed loop could not read, and passed on to the handler before (shown as usual).
// The handler is a plain function shared by every thread: one loop at a time, under a lock.
class LoopErrors {
public:
   explicit LoopErrors(std::string &kept)
   {
      std::lock_guard<std::mutex> guard(Lock());
      kept.clear();
      Kept() = &kept;
      Previous() = SetErrorHandler(&Handle);
   }
   ~LoopErrors()
   {
      SetErrorHandler(Previous());
      std::lock_guard<std::mutex> guard(Lock());
      Kept() = nullptr;
   }

private:
   static void Handle(int level, Bool_t abort, const char *location, const char *message)
   {
      if (level >= kError) {
         std::lock_guard<std::mutex> guard(Lock());
         if (Kept())
            Kept()->append(location).append(": ").append(message).append("\n");
      }
      if (Previous())
         Previous()(level, abort, location, message);
   }
   static std::mutex &Lock()
   {
      static std::mutex lock;
      return lock;
   }
   static std::string *&Kept()
   {
      static std::string *kept = nullptr;
      return kept;
   }
   static ErrorHandlerFunc_t &Previous()
   {
      static ErrorHandlerFunc_t previous = nullptr;
      return previous;
   }
};

struct BookedFill {
   ROOT::RDF::RResultPtr<FillResult> nominal;
   std::unique_ptr<ROOT::RDF::Experimental::RResultMap<FillResult>> varied;
   FillResult &Value() { return varied ? (*varied)["nominal"] : *nominal; }
};

struct Session {
   explicit Session(unsigned n) : nslots(n) {}
   unsigned nslots;
   std::vector<ROOT::RDF::RNode> nodes;
   std::vector<ROOT::RDF::RNode> roots; // one per dataset
   std::vector<BookedFill> fills;
   std::vector<ROOT::RDF::RResultPtr<ULong64_t>> counters; // progress only
   std::vector<ROOT::RDF::RResultPtr<ROOT::RDF::RInterface<ROOT::Detail::RDF::RLoopManager>>> snapshots; // skims
   std::vector<DatasetEntries> fileEntries; // one per dataset, as `roots`
   std::string loopErrors; // ROOT's error messages during the last loop, one per line
   std::string error;

   int Add(ROOT::RDF::RNode node)
   {
      nodes.push_back(std::move(node));
      return static_cast<int>(nodes.size()) - 1;
   }
   ROOT::RDF::RNode &Node(int id)
   {
      if (id < 0 || static_cast<std::size_t>(id) >= nodes.size())
         throw std::out_of_range("fw session: no node " + std::to_string(id));
      return nodes[id];
   }
   BookedFill &GetFill(int id)
   {
      if (id < 0 || static_cast<std::size_t>(id) >= fills.size())
         throw std::out_of_range("fw session: no fill " + std::to_string(id));
      return fills[id];
   }
};

// Every entry point returns a non-negative value, or -1 with the reason in fw_error().
template <typename F>
long long Guard(void *session, F &&f)
{
   auto *s = static_cast<Session *>(session);
   try {
      return f(*s);
   } catch (const std::exception &e) {
      s->error = e.what();
   } catch (...) {
      s->error = "unknown C++ exception";
   }
   return -1;
}

} // namespace fw

using fw::Guard;
using fw::Session;

extern "C" {

void *fw_session_new(unsigned nslots)
{
   return new Session(nslots);
}

void fw_session_free(void *session)
{
   delete static_cast<Session *>(session);
}

const char *fw_error(void *session)
{
   return static_cast<Session *>(session)->error.c_str();
}

// ROOT's error messages during the last loop, one per line.
const char *fw_loop_errors(void *session)
{
   return static_cast<Session *>(session)->loopErrors.c_str();
}

// After a loop: the entries read from each of the `count` files of dataset `dataset` (in the order
// the datasets were made; made with `countEntries`), into `entries` (after a failed loop: up to
// where it stopped).
long long fw_file_entries(void *session, long long dataset, unsigned long long *entries, long long count)
{
   return Guard(session, [&](Session &s) {
      const auto &read = s.fileEntries.at(dataset);
      if (!read.counts)
         throw std::invalid_argument("fw_file_entries: dataset " + std::to_string(dataset) + " was not counted");
      if (static_cast<long long>(read.nfiles) != count)
         throw std::invalid_argument("fw_file_entries: the dataset has " + std::to_string(read.nfiles) + " files");
      std::fill(entries, entries + count, 0ULL);
      for (const auto &slot : *read.counts)
         for (long long i = 0; i < count; ++i)
            entries[i] += slot[i];
      return count;
   });
}

// A dataset's first node: its files (one per line) with `sampleColumn`, the position of each
// file's sample, defined per file, and `datasetColumn`, the dataset's number (an index error in
// the loop names it: entry numbers alone are ambiguous across datasets run together). With
// `countEntries`, the entries read from each file are counted (fw_file_entries).
long long fw_dataset(void *session, const char *tree, const char *files, const int *fileSamples, const char *sampleColumn,
                     const char *datasetColumn, int dataset, int countEntries)
{
   return Guard(session, [&](Session &s) {
      const auto names = fw::Lines(files);
      std::unordered_map<std::string, int> table, positions;
      for (std::size_t i = 0; i < names.size(); ++i) {
         table[names[i] + "/" + tree] = fileSamples[i];
         positions[names[i] + "/" + tree] = static_cast<int>(i);
      }
      ROOT::RDF::RNode root = ROOT::RDF::AsRNode(ROOT::RDataFrame(tree, names));
      s.roots.push_back(root);
      fw::DatasetEntries read{{}, nullptr, names.size()};
      if (countEntries) {
         fw::FileEntries entries(s.nslots, positions);
         read.counts = entries.Counts();
         read.action = root.Book<>(std::move(entries), {});
      }
      s.fileEntries.push_back(read);
      return s.Add(root.Define(datasetColumn, [dataset] { return dataset; }).DefinePerSample(sampleColumn, [table](unsigned, const ROOT::RDF::RSampleInfo &info) {
         const auto it = table.find(info.AsString());
         if (it == table.end())
            throw std::runtime_error("file not in the plan: " + info.AsString());
         return it->second;
      }));
   });
}

// A compiled step (framework/engine/compiled.py): int step(RNode *node, char *error, unsigned long size).
long long fw_apply(void *session, long long node, void *step)
{
   return Guard(session, [&](Session &s) {
      using Step = int (*)(ROOT::RDF::RNode *, char *, unsigned long);
      ROOT::RDF::RNode result = s.Node(node);
      char message[4096] = "";
      if (reinterpret_cast<Step>(step)(&result, message, sizeof message) != 0)
         throw std::runtime_error(message);
      return s.Add(result);
   });
}

long long fw_column_type(void *session, long long node, const char *column, char *out, unsigned long size)
{
   return Guard(session, [&](Session &s) {
      const std::string type = s.Node(node).GetColumnType(column);
      std::snprintf(out, size, "%s", type.c_str());
      return static_cast<long long>(type.size());
   });
}

long long fw_fill_entries(void *session, long long fill, long long histogram)
{
   return Guard(session, [&](Session &s) { return static_cast<long long>(s.GetFill(fill).Value().Entries(histogram)); });
}

// The cells of one histogram of a fill after the loop: `size` doubles, (sum w, sum w^2) pairs.
long long fw_fill_data(void *session, long long fill, long long histogram, const double **data, unsigned long long *size)
{
   return Guard(session, [&](Session &s) {
      const auto &cells = s.GetFill(fill).Value().Data(histogram);
      *data = cells.data();
      *size = cells.size();
      return 0LL;
   });
}

long long fw_fill_release(void *session, long long fill, long long histogram)
{
   return Guard(session, [&](Session &s) {
      s.GetFill(fill).Value().Release(histogram);
      return 0LL;
   });
}

// A fill action booked by a generated function (framework/engine/compiled.py: fill_code), compiled or
// interpreted, on `columns` (one per line: sample, weights, values): int book(RNode *node,
// const char *layouts, const char *columns, void **result, char *error, unsigned long size),
// which makes a heap RResultPtr<FillResult> the session takes over.
long long fw_book_with(void *session, long long node, void *book, const char *layouts, const char *columns)
{
   return Guard(session, [&](Session &s) {
      using Book = int (*)(ROOT::RDF::RNode *, const char *, const char *, void **, char *, unsigned long);
      void *result = nullptr;
      char message[4096] = "";
      if (reinterpret_cast<Book>(book)(&s.Node(node), layouts, columns, &result, message, sizeof message) != 0)
         throw std::runtime_error(message);
      std::unique_ptr<ROOT::RDF::RResultPtr<fw::FillResult>> owned(static_cast<ROOT::RDF::RResultPtr<fw::FillResult> *>(result));
      s.fills.push_back({*owned, nullptr});
      return static_cast<long long>(s.fills.size()) - 1;
   });
}

// Compile every dataset's pending JIT code now, so that the loop's time is the loop's.
long long fw_jit(void *session)
{
   return Guard(session, [&](Session &s) {
      for (auto &root : s.roots)
         fw::LoopManagerOf::Get(root)->Jit();
      return 0LL;
   });
}

// One event loop for every dataset (RunGraphs), through one fill of each and every snapshot; `loop`
// gets the seconds RDataFrame itself reports for its loop.
long long fw_run(void *session, const long long *fills, long long count, double *loop)
{
   return Guard(session, [&](Session &s) {
      std::vector<ROOT::RDF::RResultHandle> handles;
      for (long long i = 0; i < count; ++i)
         handles.emplace_back(s.GetFill(fills[i]).nominal);
      for (auto &snapshot : s.snapshots)
         handles.emplace_back(snapshot);
      auto &channel = ROOT::Detail::RDF::RDFLogChannel();
      const auto verbosity = channel.SetVerbosity(ROOT::ELogLevel::kInfo);
      auto owned = std::make_unique<fw::LoopLog>();
      auto *log = owned.get();
      ROOT::RLogManager::Get().PushFront(std::move(owned));
      struct Restore {
         ROOT::RLogChannel &channel;
         ROOT::ELogLevel verbosity;
         fw::LoopLog *log;
         ~Restore()
         {
            channel.SetVerbosity(verbosity);
            ROOT::RLogManager::Get().Remove(log);
         }
      } restore{channel, verbosity, log};
      // RDataFrame prints "event loop was interrupted" to std::cerr before rethrowing a user
      // code's exception; the exception is reported (framework/engine/run.py), the line is noise.
      struct QuietInterruption {
         std::ostringstream text;
         std::streambuf *kept = std::cerr.rdbuf(text.rdbuf());
         ~QuietInterruption()
         {
            std::cerr.rdbuf(kept);
            std::istringstream lines(text.str());
            for (std::string line; std::getline(lines, line);)
               if (line != "RDataFrame::Run: event loop was interrupted")
                  std::cerr << line << '\n';
         }
      } quiet;
      fw::LoopErrors errors(s.loopErrors);
      ROOT::RDF::RunGraphs(handles);
      *loop = log->Elapsed();
      return 0LL;
   });
}

} // extern "C"
#endif // FW_SESSION_CORE

// ---------------------------------------------------------------- shape variations of fills
#if defined(FW_SESSION_ALL) || defined(FW_SESSION_VARY)
#ifndef FW_SESSION_VARY_DONE
#define FW_SESSION_VARY_DONE
extern "C" {

// Also fill the shape variations of the columns the fill reads (RDataFrame's VariationsFor).
long long fw_vary_fill(void *session, long long fill)
{
   return Guard(session, [&](Session &s) {
      auto &f = s.GetFill(fill);
      f.varied = std::make_unique<ROOT::RDF::Experimental::RResultMap<fw::FillResult>>(
         ROOT::RDF::Experimental::VariationsFor(f.nominal));
      return 0LL;
   });
}

// 1 when the fill depends on the variation `key` ("jes:up"), else 0.
long long fw_fill_has_variation(void *session, long long fill, const char *key)
{
   return Guard(session, [&](Session &s) {
      auto &f = s.GetFill(fill);
      if (!f.varied)
         return 0LL;
      const auto keys = f.varied->GetKeys();
      return static_cast<long long>(std::find(keys.begin(), keys.end(), key) != keys.end());
   });
}

} // extern "C"
#endif
#endif

// ---------------------------------------------------------------- steps the interpreter compiles
#if defined(FW_SESSION_ALL) || defined(FW_SESSION_INTERPRET)
#ifndef FW_SESSION_INTERPRET_DONE
#define FW_SESSION_INTERPRET_DONE
extern "C" {

long long fw_define(void *session, long long node, const char *name, const char *expression)
{
   return Guard(session, [&](Session &s) { return s.Add(s.Node(node).Define(name, expression)); });
}

long long fw_filter(void *session, long long node, const char *expression, const char *name)
{
   return Guard(session, [&](Session &s) { return s.Add(s.Node(node).Filter(expression, name)); });
}

// Vary `columns` (one per line) together into the variations `tags` (one per line: up, down; or up alone).
long long fw_vary(void *session, long long node, const char *columns, const char *expression, const char *name,
                  const char *directions)
{
   return Guard(session, [&](Session &s) {
      const auto cols = fw::Lines(columns);
      const auto tags = fw::Lines(directions);
      if (cols.size() == 1)
         return s.Add(s.Node(node).Vary(cols[0], expression, tags, name));
      return s.Add(s.Node(node).Vary(cols, expression, tags, name));
   });
}

} // extern "C"
#endif
#endif

// ---------------------------------------------------------------- entry ranges
#if defined(FW_SESSION_ALL) || defined(FW_SESSION_RANGES)
#ifndef FW_SESSION_RANGES_DONE
#define FW_SESSION_RANGES_DONE
namespace fw {

// Position of the next entry in the current file, per processing slot. With threads rdfentry_
// is not the entry number in the file; but each task starts at a known entry of one file
// (RSampleInfo::EntryRange) and reads its entries in order.
class FilePosition {
public:
   explicit FilePosition(unsigned nslots) : fNext(nslots, 0) {}
   void StartTask(unsigned slot, long long first) { fNext[slot] = first; }
   long long Next(unsigned slot) { return fNext[slot]++; }

private:
   std::vector<long long> fNext;
};

} // namespace fw

extern "C" {

// Read only the entries [begins[i], ends[i]) of file i (--max-events, batch parts within a file).
long long fw_read_ranges(void *session, long long node, const char *tree, const char *files, const long long *begins,
                         const long long *ends)
{
   return Guard(session, [&](Session &s) {
      const auto names = fw::Lines(files);
      std::unordered_map<std::string, std::pair<long long, long long>> table;
      for (std::size_t i = 0; i < names.size(); ++i)
         table[names[i] + "/" + tree] = {begins[i], ends[i]};
      auto position = std::make_shared<fw::FilePosition>(s.nslots);
      auto limited = s.Node(node)
                        .DefinePerSample("__range_of_file",
                                         [table, position](unsigned slot, const ROOT::RDF::RSampleInfo &info) {
                                            position->StartTask(slot, info.EntryRange().first);
                                            const auto &range = table.at(info.AsString());
                                            return ROOT::RVec<long long>{range.first, range.second};
                                         })
                        // a varied action must not read a DefinePerSample column directly (ROOT 6.40 aborts)
                        .Define("__range", [](const ROOT::RVec<long long> &r) { return r; }, {"__range_of_file"})
                        .Filter(
                           [position](unsigned slot, const ROOT::RVec<long long> &range) {
                              const long long entry = position->Next(slot);
                              return range[0] <= entry && entry < range[1];
                           },
                           {"rdfslot_", "__range"});
      return s.Add(limited);
   });
}

} // extern "C"
#endif
#endif

// ---------------------------------------------------------------- progress bar and progress file
#if defined(FW_SESSION_ALL) || defined(FW_SESSION_PROGRESS)
#ifndef FW_SESSION_PROGRESS_DONE
#define FW_SESSION_PROGRESS_DONE
namespace fw {

// Progress for notebooks: the event count, written to a small JSON file as the loop runs.
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

} // namespace fw

extern "C" {

long long fw_progress_bar(void *session, long long node)
{
   return Guard(session, [&](Session &s) {
      ROOT::RDF::Experimental::AddProgressBar(s.Node(node));
      return 0LL;
   });
}

// Count every `every` events of the node's loop into the JSON file `path` (at most 4 writes/s).
long long fw_watch_progress(void *session, long long node, const char *path, unsigned long long total,
                            unsigned long long every)
{
   return Guard(session, [&](Session &s) {
      auto progress = std::make_shared<fw::Progress>();
      progress->path = path;
      progress->total = total;
      auto count = s.Node(node).Count();
      count.OnPartialResultSlot(every, [progress, every](unsigned int, ULong64_t &) {
         progress->events += every;
         fw::write_progress(*progress, false);
      });
      s.counters.push_back(count);
      return 0LL;
   });
}

} // extern "C"
#endif
#endif

// ---------------------------------------------------------------- per-file constants
#if defined(FW_SESSION_ALL) || defined(FW_SESSION_CONSTANT)
#ifndef FW_SESSION_CONSTANT_DONE
#define FW_SESSION_CONSTANT_DONE
extern "C" {

// A column with the same value for every event of a file (DefinePerSample): the weights of
// collision data. Only for graphs without shape variations (a varied action that reads a
// per-sample column aborts in ROOT 6.40).
long long fw_constant(void *session, long long node, const char *name, const double *values, long long count)
{
   return Guard(session, [&](Session &s) {
      const ROOT::RVecD constant(values, values + count);
      return s.Add(s.Node(node).DefinePerSample(name, [constant](unsigned, const ROOT::RDF::RSampleInfo &) { return constant; }));
   });
}

} // extern "C"
#endif
#endif

// ---------------------------------------------------------------- snapshots (skims)
#if defined(FW_SESSION_ALL) || defined(FW_SESSION_SNAPSHOT)
#ifndef FW_SESSION_SNAPSHOT_DONE
#define FW_SESSION_SNAPSHOT_DONE
extern "C" {

// Write the events of `node` with `columns` (one per line) into `tree` of `file`, during the loop: an
// RNTuple or a TTree; with `variations`, also the shape variations of the columns and the mask of the
// variations each event passed (ROOT 6.40: a TTree written by one thread only).
long long fw_snapshot(void *session, long long node, const char *tree, const char *file, const char *columns,
                      int rntuple, int variations)
{
   return Guard(session, [&](Session &s) {
      ROOT::RDF::RSnapshotOptions options;
      options.fLazy = true;
      options.fOutputFormat =
         rntuple ? ROOT::RDF::ESnapshotOutputFormat::kRNTuple : ROOT::RDF::ESnapshotOutputFormat::kTTree;
      options.fIncludeVariations = variations != 0;
      // Clusters of about 5 MB compressed (ROOT's defaults, 30 MB for a TTree and 128 MB for an RNTuple,
      // leave a skim in one cluster, which one thread reads: RDataFrame splits files by clusters). Only
      // the option of the format: ROOT warns about the other's, and a ROOT warning here, in a call from
      // ctypes without Python's lock, crashes the process in ROOT's Python warning handler.
      if (rntuple)
         options.fApproxZippedClusterSize = 5000000;
      else
         options.fAutoFlush = -5000000;
      s.snapshots.push_back(s.Node(node).Snapshot(tree, file, fw::Lines(columns), options));
      return static_cast<long long>(s.snapshots.size()) - 1;
   });
}

} // extern "C"
#endif
#endif
