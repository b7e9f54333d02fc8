// Drift-tube test stand: decoding of raw TDC words, grouping by orbit, and straight-line fits.
// Four chambers of 4 staggered layers x 16 cells (42 mm x 13 mm); chamber 1 is rotated by 90
// degrees (it measures the other coordinate). Channel within a chamber = 4 * cell + layer.
#ifndef ANALYSIS_DT_H
#define ANALYSIS_DT_H

#include <ROOT/RVec.hxx>
#include <TFile.h>
#include <TTree.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace dt {

constexpr double kCellWidth = 42.;   // mm
constexpr double kCellHeight = 13.;  // mm
constexpr double kDriftVelocity = 0.0538; // mm/ns (53.8 um/ns)
constexpr double kChamberZ[4] = {0., 250., 500., 750.}; // mm, bottom of each chamber
constexpr int kLayers = 4, kCells = 16;

struct Word {
   unsigned tdc, bx, fpga, channel, head;
   std::uint32_t orbit;
};

// Bits 0-4 TDC_MEAS, 5-16 BX, 17-48 ORB_CNT, 49-57 TDC_CHANNEL, 58-60 FPGA, 61-63 HEAD.
inline Word decode(std::uint64_t w)
{
   return {unsigned(w & 0x1F), unsigned((w >> 5) & 0xFFF), unsigned((w >> 58) & 0x7), unsigned((w >> 49) & 0x1FF),
           unsigned((w >> 61) & 0x7), std::uint32_t((w >> 17) & 0xFFFFFFFFULL)};
}

// Time of a word in ns: 25 * (BX + TDC_MEAS / 30).
inline double time_of(const Word &w) { return 25. * (w.bx + w.tdc / 30.); }

// Chamber of (FPGA, channel): 0 = FPGA 0 ch 0-63, 1 = FPGA 0 ch 64-127, 2 = FPGA 1 ch 0-63,
// 3 = FPGA 1 ch 64-127; -1 for the scintillator (FPGA 1, channel 128) and anything else.
inline int chamber_of(unsigned fpga, unsigned channel)
{
   if (fpga > 1 || channel > 127)
      return -1;
   return int(2 * fpga + channel / 64);
}

inline double wire_position(int layer, int cell) { return (cell + 0.5) * kCellWidth + (layer % 2) * kCellWidth / 2; }

inline double layer_z(int chamber, int layer) { return kChamberZ[chamber] + (layer + 0.5) * kCellHeight; }

// Groups the word stream (HEAD == 2 only) into one row per orbit; words of an orbit are
// contiguous in the stream. Written as a ROOT tree with clusters, for RDataFrame.
class OrbitWriter {
public:
   explicit OrbitWriter(const std::string &path)
      : fFile(TFile::Open(path.c_str(), "RECREATE")), fTree(new TTree("orbits", "hits grouped by orbit"))
   {
      fTree->SetDirectory(fFile);
      fTree->Branch("orbit", &fOrbit);
      fTree->Branch("has_t0", &fHasT0);
      fTree->Branch("t0", &fT0);
      fTree->Branch("hit_chamber", &fChamber);
      fTree->Branch("hit_layer", &fLayer);
      fTree->Branch("hit_cell", &fCell);
      fTree->Branch("hit_time", &fTime); // ns after t0 (when there is one)
      fTree->SetAutoFlush(10000);
   }

   void operator()(ULong64_t raw)
   {
      const Word w = decode(raw);
      if (w.head != 2)
         return;
      if (fStarted && w.orbit != fOrbit)
         Flush();
      fStarted = true;
      fOrbit = w.orbit;
      if (w.fpga == 1 && w.channel == 128) {
         fHasT0 = true;
         fT0 = time_of(w);
         return;
      }
      const int chamber = chamber_of(w.fpga, w.channel);
      if (chamber < 0)
         return;
      const int local = w.channel % 64;
      fChamber.push_back(chamber);
      fLayer.push_back(local % kLayers);
      fCell.push_back(local / kLayers);
      fRawTime.push_back(time_of(w));
   }

   void Finish()
   {
      if (fStarted)
         Flush();
      fFile->cd();
      fTree->Write();
      fFile->Close();
   }

private:
   void Flush()
   {
      fTime.clear();
      for (double t : fRawTime)
         fTime.push_back(fHasT0 ? t - fT0 : 0.);
      fTree->Fill();
      fChamber.clear(), fLayer.clear(), fCell.clear(), fRawTime.clear();
      fHasT0 = false;
      fT0 = 0.;
   }

   TFile *fFile;
   TTree *fTree;
   bool fStarted = false;
   std::uint32_t fOrbit = 0;
   bool fHasT0 = false;
   double fT0 = 0.;
   std::vector<int> fChamber, fLayer, fCell;
   std::vector<double> fRawTime, fTime;
};

inline int hits_in(const ROOT::RVecI &chamber, int c)
{
   int n = 0;
   for (int x : chamber)
      n += x == c;
   return n;
}

// Drift distance (mm) of each hit: (t_hit - t0 + offset of its chamber) * v_drift.
inline ROOT::RVecD drift_distance(const ROOT::RVecD &time, const ROOT::RVecI &chamber, const ROOT::RVecD &offsets)
{
   ROOT::RVecD d(time.size());
   for (std::size_t i = 0; i < time.size(); ++i)
      d[i] = (time[i] + offsets[chamber[i]]) * kDriftVelocity;
   return d;
}

struct Fit {
   bool ok = false;
   double slope = 0., intercept = 0., chi2ndf = std::numeric_limits<double>::infinity();
   ROOT::RVecD x, z; // the chosen positions (left or right of each wire)
   double Angle() const { return ok ? std::atan(slope) : -99.; }
};

// Least-squares line x = intercept + slope * z; chi2 with the hit resolution `sigma` (mm).
inline Fit line_fit(const ROOT::RVecD &x, const ROOT::RVecD &z, double sigma)
{
   Fit f;
   const double n = x.size();
   if (n < 3)
      return f;
   double sz = 0., sx = 0., szz = 0., szx = 0.;
   for (std::size_t i = 0; i < x.size(); ++i) {
      sz += z[i], sx += x[i], szz += z[i] * z[i], szx += z[i] * x[i];
   }
   const double det = n * szz - sz * sz;
   f.slope = (n * szx - sz * sx) / det;
   f.intercept = (sx - f.slope * sz) / n;
   double chi2 = 0.;
   for (std::size_t i = 0; i < x.size(); ++i) {
      const double r = (x[i] - f.intercept - f.slope * z[i]) / sigma;
      chi2 += r * r;
   }
   f.chi2ndf = chi2 / (n - 2);
   f.ok = true;
   f.x = x;
   f.z = z;
   return f;
}

// The best straight line through one chamber's hits: every left/right choice of every hit
// (and, in a layer with several hits, every choice of one hit) is fitted; the smallest
// chi2/ndf wins. Needs hits in at least three layers.
inline Fit local_fit(const ROOT::RVecI &chamber, const ROOT::RVecI &layer, const ROOT::RVecI &cell,
                     const ROOT::RVecD &drift, int c, double sigma)
{
   std::vector<std::vector<std::size_t>> byLayer(kLayers);
   for (std::size_t i = 0; i < chamber.size(); ++i)
      if (chamber[i] == c)
         byLayer[layer[i]].push_back(i);
   std::vector<std::size_t> used;
   for (auto &l : byLayer)
      if (!l.empty())
         used.push_back(&l - byLayer.data());
   Fit best;
   if (used.size() < 3)
      return best;
   std::vector<std::size_t> pick(used.size(), 0);
   while (true) {
      const std::size_t n = used.size();
      for (unsigned signs = 0; signs < (1u << n); ++signs) {
         ROOT::RVecD x(n), z(n);
         for (std::size_t k = 0; k < n; ++k) {
            const std::size_t h = byLayer[used[k]][pick[k]];
            x[k] = wire_position(layer[h], cell[h]) + ((signs >> k) & 1 ? 1. : -1.) * drift[h];
            z[k] = layer_z(c, layer[h]) - kChamberZ[c];
         }
         Fit f = line_fit(x, z, sigma);
         if (f.chi2ndf < best.chi2ndf)
            best = f;
      }
      std::size_t k = 0; // next choice of one hit per layer
      while (k < n && ++pick[k] == byLayer[used[k]].size())
         pick[k++] = 0;
      if (k == n)
         break;
   }
   for (auto &z : best.z) // global coordinates for the global fit
      z += kChamberZ[c];
   return best;
}

// One line through the positions chosen by the local fits of the chambers given.
inline Fit global_fit(const std::vector<Fit> &locals, double sigma)
{
   ROOT::RVecD x, z;
   for (const auto &f : locals) {
      if (!f.ok)
         return {};
      x.insert(x.end(), f.x.begin(), f.x.end());
      z.insert(z.end(), f.z.begin(), f.z.end());
   }
   return line_fit(x, z, sigma);
}

} // namespace dt

#endif
