// Deterministic generator of NanoAOD-like events: Z->mumu, ttbar, W+jets and single-top-like
// kinematics, and the mixture the ADL benchmark queries select from.
// Every event is a pure function of (process, seed, entry), so files are identical
// whatever the thread count or the order of generation.
#ifndef FRAMEWORK_GENERATOR_HXX
#define FRAMEWORK_GENERATOR_HXX

#include <Math/Boost.h>
#include <Math/Vector4D.h>
#include <ROOT/RVec.hxx>
#include <TRandom3.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>

namespace fwgen {

using P4 = ROOT::Math::PxPyPzMVector;

struct Event {
   float genWeight = 1.f;
   ROOT::RVecF Muon_pt, Muon_eta, Muon_phi, Muon_mass, Muon_pfRelIso04_all, Muon_sip3d;
   ROOT::RVecI Muon_charge;
   ROOT::RVec<bool> Muon_tightId, Muon_isTracker;
   ROOT::RVecF Electron_pt, Electron_eta, Electron_phi, Electron_mass, Electron_pfRelIso03_all, Electron_sip3d;
   ROOT::RVecI Electron_charge, Electron_cutBased;
   ROOT::RVecF Jet_pt, Jet_eta, Jet_phi, Jet_mass, Jet_btagCSVV2, Jet_btag;
   ROOT::RVecI Jet_jetId, Jet_hadronFlavour;
   float MET_pt = 0.f, MET_phi = 0.f;
   ROOT::RVecF LHEScaleWeight, PSWeight;
   float Pileup_nTrueInt = 0.f;
};

inline std::uint64_t splitmix(std::uint64_t x)
{
   x += 0x9E3779B97F4A7C15ULL;
   x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
   x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
   return x ^ (x >> 31);
}

// Two-body decay of `parent` into masses m1, m2, isotropic in the parent frame.
inline std::pair<P4, P4> TwoBodyDecay(TRandom3 &rng, const P4 &parent, double m1, double m2)
{
   const double M = parent.M();
   const double p = std::sqrt(std::max(0., (M * M - (m1 + m2) * (m1 + m2)) * (M * M - (m1 - m2) * (m1 - m2)))) / (2 * M);
   const double cost = rng.Uniform(-1., 1.), sint = std::sqrt(1. - cost * cost), phi = rng.Uniform(-M_PI, M_PI);
   P4 a(p * sint * std::cos(phi), p * sint * std::sin(phi), p * cost, m1);
   P4 b(-a.Px(), -a.Py(), -a.Pz(), m2);
   ROOT::Math::Boost boost(parent.BoostToCM());
   boost.Invert();
   return {boost(a), boost(b)};
}

inline double TruncatedBreitWigner(TRandom3 &rng, double mean, double width, double lo, double hi)
{
   double m;
   do
      m = rng.BreitWigner(mean, width);
   while (m < lo || m > hi);
   return m;
}

class Generator {
public:
   // fAux draws quantities added later (sip3d) without changing the main stream of older processes.
   Generator(std::uint64_t seed, std::uint64_t entry) : fRng(0), fAux(0)
   {
      fRng.SetSeed(splitmix(seed * 0x100000001B3ULL ^ splitmix(entry)) | 1);
      fAux.SetSeed(splitmix(splitmix(seed) ^ entry ^ 0x5DEECE66DULL) | 1);
   }

   Event Make(int process)
   {
      Event ev;
      fMet = P4(0, 0, 0, 0);
      double hardPt = 0.;
      if (process == 0)
         hardPt = Zll(ev, 13);
      else if (process == 1)
         hardPt = TTbar(ev);
      else if (process == 2)
         hardPt = Mixture(ev);
      else if (process == 3)
         hardPt = WJets(ev);
      else
         hardPt = SingleTop(ev);
      const int nIsr = fRng.Poisson(process == 0 ? 0.8 : (process == 3 ? 2.5 : 1.2));
      for (int i = 0; i < nIsr; ++i) {
         const double pt = 20. + fRng.Exp(25.);
         Jet(ev, P4(0, 0, 0, 0), pt, fRng.Gaus(0., 2.2), fRng.Uniform(-M_PI, M_PI), 0);
      }
      const int nFakeEle = fRng.Poisson(0.15);
      for (int i = 0; i < nFakeEle; ++i)
         Lepton(ev, 11, P4(), 7. + fRng.Exp(8.), fRng.Gaus(0., 1.3), fRng.Uniform(-M_PI, M_PI),
                fRng.Rndm() < 0.5 ? 1 : -1, false);
      Finish(ev, process, hardPt);
      return ev;
   }

private:
   TRandom3 fRng, fAux;
   P4 fMet;

   P4 FromPtEtaPhiM(double pt, double eta, double phi, double m)
   {
      return P4(pt * std::cos(phi), pt * std::sin(phi), pt * std::sinh(eta), m);
   }

   std::pair<P4, P4> Decay(const P4 &parent, double m1, double m2) { return TwoBodyDecay(fRng, parent, m1, m2); }
   double BreitWigner(double mean, double width, double lo, double hi) { return TruncatedBreitWigner(fRng, mean, width, lo, hi); }

   void Lepton(Event &ev, int flavour, const P4 &truth, double pt, double eta, double phi, int charge, bool prompt)
   {
      if (truth.E() > 0) {
         pt = truth.Pt() * fRng.Gaus(1., flavour == 13 ? 0.015 : 0.025);
         eta = truth.Eta();
         phi = truth.Phi();
      }
      if (pt < 5. || std::abs(eta) > (flavour == 13 ? 2.4 : 2.5) || fRng.Rndm() > 0.96)
         return;
      fMet -= FromPtEtaPhiM(pt, eta, phi, 0.);
      const float iso = prompt ? fRng.Exp(0.04) : fRng.Exp(0.4);
      const float sip3d = prompt ? fAux.Exp(1.5) : fAux.Exp(6.);
      if (flavour == 13) {
         ev.Muon_pt.push_back(pt);
         ev.Muon_eta.push_back(eta);
         ev.Muon_phi.push_back(phi);
         ev.Muon_mass.push_back(0.10566f);
         ev.Muon_charge.push_back(charge);
         ev.Muon_pfRelIso04_all.push_back(iso);
         ev.Muon_tightId.push_back(fRng.Rndm() < (prompt ? 0.97 : 0.3));
         ev.Muon_isTracker.push_back(true);
         ev.Muon_sip3d.push_back(sip3d);
      } else {
         ev.Electron_pt.push_back(pt);
         ev.Electron_eta.push_back(eta);
         ev.Electron_phi.push_back(phi);
         ev.Electron_mass.push_back(0.000511f);
         ev.Electron_charge.push_back(charge);
         ev.Electron_pfRelIso03_all.push_back(iso);
         ev.Electron_sip3d.push_back(sip3d);
         ev.Electron_cutBased.push_back(prompt ? 2 + static_cast<int>(fRng.Integer(3)) : static_cast<int>(fRng.Integer(3)));
      }
   }

   void Jet(Event &ev, const P4 &truth, double pt, double eta, double phi, int flavour)
   {
      double mass = 5. + fRng.Exp(5.);
      if (truth.E() > 0) {
         pt = truth.Pt() * fRng.Gaus(1., 0.12);
         eta = truth.Eta();
         phi = truth.Phi();
         mass = std::max(2., truth.M() + fRng.Exp(6.));
      }
      if (pt < 15. || std::abs(eta) > 4.7)
         return;
      fMet -= FromPtEtaPhiM(pt, eta, phi, mass);
      ev.Jet_pt.push_back(pt);
      ev.Jet_eta.push_back(eta);
      ev.Jet_phi.push_back(phi);
      ev.Jet_mass.push_back(mass);
      const double u = fRng.Rndm();
      ev.Jet_btagCSVV2.push_back(flavour == 5 ? 1. - u * u * u : (flavour == 4 ? u : u * u * u));
      ev.Jet_btag.push_back(ev.Jet_btagCSVV2.back()); // the ADL benchmark's name for the discriminant
      ev.Jet_jetId.push_back(fRng.Rndm() < 0.97 ? 6 : 2);
      ev.Jet_hadronFlavour.push_back(flavour);
   }

   // Z -> l l (flavour 11 or 13).
   double Zll(Event &ev, int flavour)
   {
      const double ml = flavour == 13 ? 0.10566 : 0.000511;
      const double m = BreitWigner(91.1876, 2.4952, 50., 150.);
      const double pt = fRng.Exp(12.), y = fRng.Gaus(0., 1.8), phi = fRng.Uniform(-M_PI, M_PI);
      const double mt = std::sqrt(m * m + pt * pt);
      const P4 z(pt * std::cos(phi), pt * std::sin(phi), mt * std::sinh(y), m);
      const auto [l1, l2] = Decay(z, ml, ml);
      const int q = fRng.Rndm() < 0.5 ? 1 : -1;
      Lepton(ev, flavour, l1, 0, 0, 0, q, true);
      Lepton(ev, flavour, l2, 0, 0, 0, -q, true);
      return pt;
   }

   // W -> l nu (l = e or mu) recoiling against `pt`.
   void Wlnu(Event &ev, double pt)
   {
      const double m = BreitWigner(80.379, 2.085, 50., 150.), phi = fRng.Uniform(-M_PI, M_PI);
      const P4 w = FromPtEtaPhiM(pt, fRng.Gaus(0., 1.6), phi, m);
      const auto [l, nu] = Decay(w, 0., 0.);
      Lepton(ev, fRng.Rndm() < 0.5 ? 11 : 13, l, 0, 0, 0, fRng.Rndm() < 0.5 ? 1 : -1, true);
   }

   double WJets(Event &ev)
   {
      const double pt = fRng.Exp(40.);
      Wlnu(ev, pt);
      return pt;
   }

   double SingleTop(Event &ev)
   {
      const double pt = fRng.Exp(60.);
      const double m = BreitWigner(172.5, 1.41, 150., 195.);
      Top(ev, FromPtEtaPhiM(pt, fRng.Gaus(0., 1.4), fRng.Uniform(-M_PI, M_PI), m), fRng.Rndm() < 0.5 ? 1 : -1,
          fRng.Rndm() < 0.5);
      Jet(ev, P4(), 20. + fRng.Exp(40.), fRng.Gaus(0., 2.5), fRng.Uniform(-M_PI, M_PI), 0); // forward jet
      return pt;
   }

   // What the ADL queries select from: ttbar, Z -> ee/mumu, WZ -> 3 leptons, W+jets.
   double Mixture(Event &ev)
   {
      const double u = fRng.Rndm();
      if (u < 0.40)
         return TTbar(ev);
      if (u < 0.70)
         return Zll(ev, fRng.Rndm() < 0.5 ? 11 : 13);
      if (u < 0.80) {
         const double pt = Zll(ev, fRng.Rndm() < 0.5 ? 11 : 13);
         Wlnu(ev, pt + fRng.Exp(20.));
         return pt;
      }
      return WJets(ev);
   }

   // One top quark decay: b jet, then W -> l nu (l = e, mu) or q q'.
   void Top(Event &ev, const P4 &top, int charge, bool leptonic)
   {
      const double mw = BreitWigner(80.379, 2.085, 60., 100.);
      const auto [b, w] = Decay(top, 4.8, mw);
      Jet(ev, b, 0, 0, 0, 5);
      if (leptonic) {
         const int flavour = fRng.Rndm() < 0.5 ? 11 : 13;
         const auto [l, nu] = Decay(w, 0., 0.);
         Lepton(ev, flavour, l, 0, 0, 0, charge, true);
      } else {
         const auto [q1, q2] = Decay(w, 0.3, 1.5);
         Jet(ev, q1, 0, 0, 0, 0);
         Jet(ev, q2, 0, 0, 0, fRng.Rndm() < 0.5 ? 4 : 0);
      }
   }

   double TTbar(Event &ev)
   {
      const double pt = fRng.Exp(70.), phi = fRng.Uniform(-M_PI, M_PI);
      const double m1 = BreitWigner(172.5, 1.41, 150., 195.), m2 = BreitWigner(172.5, 1.41, 150., 195.);
      const P4 t1 = FromPtEtaPhiM(pt, fRng.Gaus(0., 1.4), phi, m1);
      const P4 t2 = FromPtEtaPhiM(std::max(1., pt * fRng.Gaus(1., 0.3)), fRng.Gaus(0., 1.4),
                                  phi + M_PI + fRng.Gaus(0., 0.4), m2);
      // W -> e/mu: 2/9 each side; taus are left out of the lepton count.
      const bool l1 = fRng.Rndm() < 2. / 9., l2 = fRng.Rndm() < 2. / 9.;
      Top(ev, t1, +1, l1);
      Top(ev, t2, -1, l2);
      return pt;
   }

   template <typename... Cols>
   void SortBy(ROOT::RVecF &key, Cols &...cols)
   {
      auto idx = ROOT::VecOps::Reverse(ROOT::VecOps::Argsort(key));
      key = ROOT::VecOps::Take(key, idx);
      ((cols = ROOT::VecOps::Take(cols, idx)), ...);
   }

   void Finish(Event &ev, int process, double hardPt)
   {
      SortBy(ev.Muon_pt, ev.Muon_eta, ev.Muon_phi, ev.Muon_mass, ev.Muon_charge, ev.Muon_pfRelIso04_all, ev.Muon_tightId,
             ev.Muon_sip3d, ev.Muon_isTracker);
      SortBy(ev.Electron_pt, ev.Electron_eta, ev.Electron_phi, ev.Electron_mass, ev.Electron_charge,
             ev.Electron_pfRelIso03_all, ev.Electron_cutBased, ev.Electron_sip3d);
      SortBy(ev.Jet_pt, ev.Jet_eta, ev.Jet_phi, ev.Jet_mass, ev.Jet_btagCSVV2, ev.Jet_jetId, ev.Jet_hadronFlavour,
             ev.Jet_btag);
      const double metx = fMet.Px() + fRng.Gaus(0., 12.), mety = fMet.Py() + fRng.Gaus(0., 12.);
      ev.MET_pt = std::hypot(metx, mety);
      ev.MET_phi = std::atan2(mety, metx);
      const double sign = fRng.Rndm() < (process == 0 ? 0.12 : 0.04) ? -1. : 1.;
      ev.genWeight = sign * (0.5 + fRng.Rndm());
      const double slope = process == 0 ? 50. : 150.;
      ev.LHEScaleWeight.resize(9);
      for (int i = 0; i < 9; ++i) {
         const int muR = i / 3 - 1, muF = i % 3 - 1;
         ev.LHEScaleWeight[i] = 1. + 0.08 * muR * (1. + hardPt / slope) + 0.04 * muF;
      }
      ev.PSWeight.resize(4);
      for (int i = 0; i < 4; ++i)
         ev.PSWeight[i] = std::max(0.5, fRng.Gaus(1., 0.05 * (i + 1)));
      ev.Pileup_nTrueInt = std::max(0., fRng.Gaus(25., 6.));
   }
};

// Tag-and-probe events: a Z -> mumu pair (Breit-Wigner x resolution) or, with probability
// `background`, a combinatorial pair with a falling mass spectrum. Every muon gets
// isTracker, tightId and an isolation drawn from known efficiencies: `id` is the tightId
// efficiency of a tracker muon of a prompt muon in (|eta| bin, pt bin) of `eta_edges` x
// `pt_edges` (row-major), `iso_scale` the mean of the exponential isolation of prompt muons.
struct TnpTruth {
   ROOT::RVecD eta_edges, pt_edges, id;
   double tracker = 0.99, iso_scale = 0.04, background = 0.;
};

inline int tnp_bin(const ROOT::RVecD &edges, double x)
{
   const auto it = std::upper_bound(edges.begin(), edges.end(), x);
   return std::clamp(int(it - edges.begin()) - 1, 0, int(edges.size()) - 2);
}

inline Event generate_tnp(const TnpTruth &truth, std::uint64_t seed, std::uint64_t entry)
{
   TRandom3 rng(splitmix(seed * 0x100000001B3ULL ^ splitmix(entry)) | 1);
   Event ev;
   const bool signal = rng.Rndm() >= truth.background;
   double mass;
   if (signal) {
      do
         mass = rng.BreitWigner(91.1876, 2.4952) + rng.Gaus(0., 1.2);
      while (mass < 40. || mass > 140.);
   } else {
      do
         mass = 40. + rng.Exp(30.);
      while (mass > 140.);
   }
   const double pt = rng.Exp(10.), y = rng.Gaus(0., 1.2), phi = rng.Uniform(-M_PI, M_PI);
   const double mt = std::sqrt(mass * mass + pt * pt);
   const P4 z(pt * std::cos(phi), pt * std::sin(phi), mt * std::sinh(y), mass);
   // isotropic decay in the pair's frame
   const double m = 0.10566, p = std::sqrt(std::max(0., mass * mass / 4 - m * m));
   const double cost = rng.Uniform(-1., 1.), sint = std::sqrt(1. - cost * cost), dphi = rng.Uniform(-M_PI, M_PI);
   P4 a(p * sint * std::cos(dphi), p * sint * std::sin(dphi), p * cost, m), b(-a.Px(), -a.Py(), -a.Pz(), m);
   ROOT::Math::Boost boost(z.BoostToCM());
   boost.Invert();
   const int q = rng.Rndm() < 0.5 ? 1 : -1;
   const int charges[2] = {q, signal || rng.Rndm() < 0.5 ? -q : q};
   const P4 muons[2] = {boost(a), boost(b)};
   for (int i = 0; i < 2; ++i) {
      const P4 &mu = muons[i];
      if (mu.Pt() < 5. || std::abs(mu.Eta()) > 2.4)
         continue;
      const bool tracker = rng.Rndm() < (signal ? truth.tracker : 0.9);
      const double eff = signal ? truth.id[tnp_bin(truth.eta_edges, std::abs(mu.Eta())) * (truth.pt_edges.size() - 1) +
                                          tnp_bin(truth.pt_edges, mu.Pt())]
                                : 0.5;
      const bool tight = tracker && rng.Rndm() < eff;
      ev.Muon_pt.push_back(mu.Pt());
      ev.Muon_eta.push_back(mu.Eta());
      ev.Muon_phi.push_back(mu.Phi());
      ev.Muon_mass.push_back(m);
      ev.Muon_charge.push_back(charges[i]);
      ev.Muon_tightId.push_back(tight);
      ev.Muon_isTracker.push_back(tracker);
      ev.Muon_pfRelIso04_all.push_back(rng.Exp(signal ? truth.iso_scale : 0.3));
      ev.Muon_sip3d.push_back(rng.Exp(1.5));
   }
   ev.genWeight = 1.f;
   ev.MET_pt = std::abs(rng.Gaus(0., 15.));
   ev.MET_phi = rng.Uniform(-M_PI, M_PI);
   return ev;
}

// Flat open-data-style four-lepton events (ATLAS open data layout, MeV): H -> ZZ* -> 4l,
// ZZ -> 4l, and Z + two non-prompt leptons (the reducible background).
struct FlatEvent {
   ROOT::RVecF lep_pt, lep_eta, lep_phi, lep_E, lep_ptcone30, lep_etcone20;
   ROOT::RVecI lep_charge, lep_type;
   float mcWeight = 1.f, scaleFactor_ELE = 1.f, scaleFactor_MUON = 1.f, scaleFactor_LepTRIGGER = 1.f,
         scaleFactor_PILEUP = 1.f;
};

class FourLepton {
public:
   FourLepton(std::uint64_t seed, std::uint64_t entry) : fRng(splitmix(seed * 0x100000001B3ULL ^ splitmix(entry)) | 1) {}

   FlatEvent Make(int kind)
   {
      FlatEvent ev;
      const double pt = fRng.Exp(kind == 0 ? 30. : 20.), phi = fRng.Uniform(-M_PI, M_PI), y = fRng.Gaus(0., 1.5);
      if (kind == 2) { // Z -> ll plus two non-prompt leptons (from jets or b decays)
         const double m = BreitWigner(91.1876, 2.4952, 60., 120.);
         Pair(ev, System(m, pt, y, phi), Flavour());
         for (int i = 0; i < 2; ++i)
            Lepton(ev, P4(), Flavour(), fRng.Rndm() < 0.5 ? 1 : -1, false);
      } else {
         double m1, m2, mass;
         if (kind == 0) { // m_H = 125 GeV, narrow: one Z on shell, one off shell
            mass = fRng.Gaus(125., 0.004);
            m1 = BreitWigner(91.1876, 2.4952, 50., 115.);
            m2 = BreitWigner(91.1876, 2.4952, 12., mass - m1 - 0.5);
         } else { // continuum: mostly both Z on shell, sometimes one off shell (the 4l mass tail below 180 GeV)
            m1 = BreitWigner(91.1876, 2.4952, 60., 120.);
            m2 = fRng.Rndm() < 0.06 ? fRng.Uniform(12., 60.) : BreitWigner(91.1876, 2.4952, 60., 120.);
            mass = m1 + m2 + fRng.Exp(kind == 1 ? 40. : 10.);
         }
         const P4 parent = System(mass, pt, y, phi);
         const auto [z1, z2] = Decay(parent, m1, m2);
         Pair(ev, z1, Flavour());
         Pair(ev, z2, Flavour());
      }
      int electrons = 0;
      for (int t : ev.lep_type)
         electrons += t == 11;
      const int muons = int(ev.lep_type.size()) - electrons;
      // the simulation already matches the pseudo-data: scale factors scatter about 1
      ev.scaleFactor_ELE = std::pow(fRng.Gaus(1., 0.01), electrons);
      ev.scaleFactor_MUON = std::pow(fRng.Gaus(1., 0.005), muons);
      ev.scaleFactor_LepTRIGGER = fRng.Gaus(1., 0.005);
      ev.scaleFactor_PILEUP = std::max(0.5, fRng.Gaus(1., 0.05));
      return ev;
   }

private:
   TRandom3 fRng;

   int Flavour() { return fRng.Rndm() < 0.5 ? 11 : 13; }

   double BreitWigner(double mean, double width, double lo, double hi)
   {
      return hi <= lo ? lo : TruncatedBreitWigner(fRng, mean, width, lo, hi);
   }

   P4 System(double mass, double pt, double y, double phi)
   {
      const double mt = std::sqrt(mass * mass + pt * pt);
      return P4(pt * std::cos(phi), pt * std::sin(phi), mt * std::sinh(y), mass);
   }

   std::pair<P4, P4> Decay(const P4 &parent, double m1, double m2) { return TwoBodyDecay(fRng, parent, m1, m2); }

   void Pair(FlatEvent &ev, const P4 &z, int flavour)
   {
      const double m = flavour == 11 ? 0.000511 : 0.10566;
      const auto [a, b] = Decay(z, m, m);
      const int q = fRng.Rndm() < 0.5 ? 1 : -1;
      Lepton(ev, a, flavour, q, true);
      Lepton(ev, b, flavour, -q, true);
   }

   // A reconstructed lepton in GeV internally, written in MeV; non-prompt ones get a random
   // soft momentum and large isolation sums.
   void Lepton(FlatEvent &ev, const P4 &truth, int flavour, int charge, bool prompt)
   {
      double pt, eta, phi;
      if (prompt) {
         pt = truth.Pt() * fRng.Gaus(1., flavour == 11 ? 0.02 : 0.015);
         eta = truth.Eta();
         phi = truth.Phi();
      } else {
         pt = 5. + fRng.Exp(10.);
         eta = fRng.Gaus(0., 1.3);
         phi = fRng.Uniform(-M_PI, M_PI);
      }
      if (pt < 5. || std::abs(eta) > 2.5 || fRng.Rndm() > 0.95)
         return;
      const double m = flavour == 11 ? 0.000511 : 0.10566, p = pt * std::cosh(eta);
      ev.lep_pt.push_back(pt * 1000.);
      ev.lep_eta.push_back(eta);
      ev.lep_phi.push_back(phi);
      ev.lep_E.push_back(std::sqrt(p * p + m * m) * 1000.);
      ev.lep_charge.push_back(charge);
      ev.lep_type.push_back(flavour);
      const double scale = prompt ? 0.02 : 1.0;
      ev.lep_ptcone30.push_back(pt * 1000. * fRng.Exp(scale));
      ev.lep_etcone20.push_back(pt * 1000. * fRng.Exp(scale));
   }
};

// Kind 0: H -> 4l, 1: ZZ -> 4l, 2: reducible; -1 (pseudo-data): entries below `first` are kind 0,
// below `second` kind 1, the rest kind 2.
inline FlatEvent generate_4l(int kind, std::uint64_t seed, std::uint64_t entry, std::uint64_t first,
                             std::uint64_t second)
{
   if (kind < 0)
      kind = entry < first ? 0 : (entry < second ? 1 : 2);
   FlatEvent ev = FourLepton(seed + 7919 * kind, entry).Make(kind);
   std::vector<std::size_t> order(ev.lep_pt.size());
   std::iota(order.begin(), order.end(), 0);
   std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return ev.lep_pt[a] > ev.lep_pt[b]; });
   auto sorted = [&](auto &v) { v = ROOT::VecOps::Take(v, ROOT::RVec<std::size_t>(order.begin(), order.end())); };
   sorted(ev.lep_pt), sorted(ev.lep_eta), sorted(ev.lep_phi), sorted(ev.lep_E), sorted(ev.lep_ptcone30),
      sorted(ev.lep_etcone20), sorted(ev.lep_charge), sorted(ev.lep_type);
   return ev;
}

// Process 0: Z->mumu, 1: ttbar, 2: the ADL mixture, 3: W+jets, 4: single top;
// process -1 (data): entries below `split` are Z, the rest ttbar.
inline Event generate(int process, std::uint64_t seed, std::uint64_t entry, std::uint64_t split)
{
   if (process < 0)
      process = entry < split ? 0 : 1;
   return Generator(seed + 7919 * process, entry).Make(process);
}

} // namespace fwgen

#endif
